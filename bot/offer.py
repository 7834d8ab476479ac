"""What members may choose here: the offered models and the defaults, from the catalogue and the settings.

The catalogue can change while the bot runs (the provider's list is refreshed), so everything here is
computed on each call rather than stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.catalogue import Catalogue, ModelSpec
from bot.settings import Settings


@dataclass(frozen=True)
class Offer:
    catalogue: Catalogue
    video_models: list[str] | None
    default_model: str | None = None
    default_size: str | None = None
    default_seconds: int | None = None

    @classmethod
    def from_settings(cls, catalogue: Catalogue, settings: Settings) -> Offer:
        return cls(
            catalogue,
            settings.video_models,
            settings.default_model,
            settings.default_size,
            settings.default_seconds,
        )

    def models(self) -> list[ModelSpec]:
        return self.catalogue.offered(self.video_models)

    def model(self, chosen: str | None) -> str:
        """The model asked for, else DEFAULT_MODEL, else the first offered (the check refuses unknowns)."""
        if chosen:
            return chosen.strip()
        if self.default_model:
            return self.default_model
        offered = self.models()
        return offered[0].id if offered else ""

    def size(self, spec: ModelSpec | None, chosen: str | None) -> str:
        """The size asked for, else DEFAULT_SIZE where the model allows it, else the model's own."""
        if chosen:
            return chosen.strip().lower()
        if spec is None:
            return self.default_size or ""
        return self.default_size if self.default_size in spec.sizes else spec.sizes[0]

    def seconds(self, spec: ModelSpec | None, chosen: int | None) -> int:
        if chosen:
            return chosen
        if spec is None:
            return self.default_seconds or 0
        return self.default_seconds if self.default_seconds in spec.seconds else spec.seconds[0]

    def problems(self) -> list[str]:
        """Settings that contradict the catalogue: one plain line each (the bot does not start)."""
        offered = self.models()
        if not offered:
            return [
                f"No {self.catalogue.family} model can be offered: set VIDEO_MODELS to models the catalogue "
                "knows, or describe them in MODELS_FILE (see README)."
            ]
        ids = [spec.id.lower() for spec in offered]
        if self.default_model and self.default_model.lower() not in ids:
            return [
                f"DEFAULT_MODEL {self.default_model} is not offered; choose one of: "
                + ", ".join(spec.id for spec in offered)
                + "."
            ]
        spec = offered[ids.index(self.model(None).lower())]
        lines = []
        if self.default_model and self.default_size and self.default_size not in spec.sizes:
            lines.append(
                f"DEFAULT_SIZE {self.default_size} is not a size of {spec.id}: {', '.join(spec.sizes)}."
            )
        if self.default_model and self.default_seconds and self.default_seconds not in spec.seconds:
            lengths = ", ".join(str(seconds) for seconds in spec.seconds)
            lines.append(f"DEFAULT_SECONDS {self.default_seconds} is not a length of {spec.id}: {lengths}.")
        return lines
