"""The model catalogue: built-in files, MODELS_FILE and PRICES_FILE, OpenRouter's list, the saved list."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest

from bot.catalogue import (
    DATA_DIR,
    FAMILIES,
    Audio,
    Catalogue,
    ModelSpec,
    ProviderListChange,
    Remix,
    closest_seconds,
    describe,
    estimate_micros,
    load_provider_models,
    per_second_micros,
    save_provider_models,
    size_for,
    size_label,
    specs_from_openrouter_models,
    unusable_reason,
)
from bot.db import Database
from bot.pricing import NoPriceError, PriceFileError
from bot.validation import RequestRefused

# GET /videos/models as the reference shows it (providers.md §1.5): the spec's example (S1) verbatim,
# two models with the live values of S2 (unsorted durations, the guide's SKU keys), and the per-second
# SKU shapes a capture of the live endpoint shows ("duration_seconds_720p", "cents_per_second_output").
OPENROUTER_MODELS = {
    "data": [
        {
            "allowed_passthrough_parameters": [],
            "canonical_slug": "google/veo-3.1",
            "created": 1700000000,
            "description": "Google video generation model",
            "generate_audio": True,
            "id": "google/veo-3.1",
            "name": "Veo 3.1",
            "pricing_skus": {"generate": "0.50"},
            "seed": None,
            "supported_aspect_ratios": ["16:9"],
            "supported_durations": [5, 8],
            "supported_frame_images": ["first_frame", "last_frame"],
            "supported_resolutions": ["720p"],
            "supported_sizes": None,
        },
        {
            "allowed_passthrough_parameters": [
                "personGeneration",
                "aspectRatio",
                "negativePrompt",
                "conditioningScale",
                "enhancePrompt",
            ],
            "canonical_slug": "google/veo-3.1-lite",
            "created": 1760000000,
            "creativity": None,
            "generate_audio": True,
            "id": "google/veo-3.1-lite",
            "name": "Veo 3.1 Lite",
            "pricing_skus": {"per-video-second": "0.50", "per-video-second-1080p": "0.75"},
            "seed": True,
            "supported_aspect_ratios": ["16:9", "9:16"],
            "supported_durations": [8, 4, 6],
            "supported_frame_images": ["first_frame", "last_frame"],
            "supported_resolutions": ["720p", "1080p"],
            "supported_sizes": None,
            "upscale_factor": None,
        },
        {
            "allowed_passthrough_parameters": [],
            "canonical_slug": "bytedance/seedance-2.0-fast",
            "created": 1770000000,
            "generate_audio": True,
            "id": "bytedance/seedance-2.0-fast",
            "name": "Seedance 2.0 Fast",
            "pricing_skus": {"video_tokens": "0.0000056"},
            "seed": True,
            "supported_aspect_ratios": ["16:9", "9:16"],
            "supported_durations": list(range(4, 16)),
            "supported_frame_images": ["first_frame"],
            "supported_resolutions": ["480p", "720p"],
            "supported_sizes": None,
        },
        {
            "allowed_passthrough_parameters": [],
            "canonical_slug": "alibaba/wan-2.7",
            "created": 1780000000,
            "generate_audio": None,
            "id": "alibaba/wan-2.7",
            "name": "Wan 2.7",
            "pricing_skus": {
                "duration_seconds_480p": "0.05",
                "duration_seconds_720p": "0.10",
                "duration_seconds_1080p": "0.20",
                "image_to_video_duration_seconds_with_audio_1080p": "0.25",
            },
            "seed": None,
            "supported_aspect_ratios": ["16:9"],
            "supported_durations": [10, 5],
            "supported_frame_images": None,
            "supported_resolutions": ["480p", "720p", "1080p"],
            "supported_sizes": None,
        },
        {
            "allowed_passthrough_parameters": [],
            "canonical_slug": "minimax/hailuo-2.3",
            "created": 1790000000,
            "generate_audio": False,
            "id": "minimax/hailuo-2.3",
            "name": "Hailuo 2.3",
            "pricing_skus": {"cents_per_second_output_1080p": "4.5", "cents_per_second_output": "2.8"},
            "seed": None,
            "supported_aspect_ratios": None,
            "supported_durations": [6, 10],
            "supported_frame_images": ["first_frame"],
            "supported_resolutions": None,
            "supported_sizes": ["1920x1080", "1366x768"],
        },
        {
            "allowed_passthrough_parameters": [],
            "canonical_slug": "kwaivgi/kling-video-o1",
            "created": 1790000001,
            "generate_audio": None,
            "id": "kwaivgi/kling-video-o1",
            "name": "Kling Video O1",
            "pricing_skus": None,
            "seed": None,
            "supported_aspect_ratios": None,
            "supported_durations": None,
            "supported_frame_images": None,
            "supported_resolutions": None,
            "supported_sizes": None,
        },
        {"name": "an entry without an id"},
        "not an object",
    ]
}

LANDSCAPE_720 = {"resolution": "720p", "aspect_ratio": "16:9"}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- built-in files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_every_built_in_file_loads_and_its_recommended_models_are_priced(family: str) -> None:
    catalogue = Catalogue.load(family)
    recommended = catalogue.offered()
    if (DATA_DIR / f"{family}.toml").is_file():
        assert recommended, f"{family} recommends no model"
    for spec in recommended:
        assert unusable_reason(spec) is None, spec.id
        assert not spec.retired
        assert all(estimate_micros(spec, size, spec.seconds[0]) > 0 for size in spec.sizes)
        assert spec.remix is not Remix.FRAME or spec.image
    assert catalogue.warnings() == []


def test_sora_stays_retired_with_openais_list_prices() -> None:
    catalogue = Catalogue.load("openai")
    list_prices = {
        "sora-2": {"1280x720": 100_000, "720x1280": 100_000},
        "sora-2-pro": {"1280x720": 300_000, "720x1280": 300_000, "1792x1024": 500_000, "1024x1792": 500_000},
    }
    for model, prices in list_prices.items():
        spec = catalogue.get(model)
        assert spec is not None and spec.retired and spec.remix is Remix.NATIVE
        assert spec.seconds == (4, 8, 12)
        assert {size: per_second_micros(spec, size) for size in spec.sizes} == prices
    assert catalogue.get("sora-2-pro").sizes == ("1280x720", "720x1280", "1792x1024", "1024x1792")
    assert [spec.id for spec in catalogue.offered()] == ["minimax/h3", "muse-video"]
    aiml = Catalogue.load("aimlapi")
    assert aiml.get("openai/sora-2-t2v").retired and aiml.get("openai/sora-2-pro-t2v").retired
    assert "openai/sora-2-t2v" not in [spec.id for spec in aiml.offered()]


def test_a_family_without_a_built_in_file_starts_empty(tmp_path: Path) -> None:
    catalogue = Catalogue.load("fal", data_dir=tmp_path)
    assert catalogue.offered() == [] and catalogue.get("fal-ai/veo3.1") is None
    assert catalogue.warnings() == [
        "no fal model can be offered; set VIDEO_MODELS or describe models in MODELS_FILE"
    ]
    models = write(
        tmp_path / "models.toml",
        '[models."fal-ai/veo3.1"]\nlabel = "Veo 3.1"\nseconds = [8]\nsizes = ["1280x720"]\n'
        "usd_per_second = 0.40\nrecommended = true\n",
    )
    catalogue = Catalogue.load("fal", models_file=models, data_dir=tmp_path)
    assert [describe(spec) for spec in catalogue.offered()] == ["Veo 3.1 · $0.40/s"]
    with pytest.raises(ValueError, match="unknown provider family 'sora'"):
        Catalogue.load("sora")


# --- retired models, offered models, warnings ---------------------------------------------------------


def test_retired_models_only_when_listed_with_a_warning() -> None:
    catalogue = Catalogue.load("openai")
    assert "sora-2" not in [spec.id for spec in catalogue.offered()]
    offered = catalogue.offered(["sora-2", "SORA-2", "muse-video", "no-such-model", "muse-video-50s"])
    assert [spec.id for spec in offered] == ["sora-2", "muse-video", "muse-video-50s"]
    assert catalogue.warnings(["sora-2", "no-such-model", "muse-video-50s"]) == [
        "sora-2 (Sora 2) is retired; it is offered only because VIDEO_MODELS lists it, "
        "and the provider may refuse it",
        "VIDEO_MODELS offers no-such-model, which the openai catalogue does not know; "
        "describe it in MODELS_FILE",
        "muse-video-50s cannot be used as it is: it has no price for 1280x720, so requests for it are "
        "refused; give usd_per_second in MODELS_FILE or a price in PRICES_FILE",
    ]
    assert catalogue.warnings(["no-such-model"])[-1].startswith("no openai model can be offered")


def test_dated_snapshots_are_their_base_model_and_prices_file_may_price_them(tmp_path: Path) -> None:
    prices = write(tmp_path / "prices.toml", '"sora-2-2025-10-06" = 0.125\n"veo-9" = 1\n')
    catalogue = Catalogue.load("openai", prices_file=prices)
    snapshot = catalogue.get("sora-2-2025-10-06")
    assert snapshot is not None and snapshot.id == "sora-2-2025-10-06" and snapshot.label == "Sora 2"
    assert estimate_micros(snapshot, "1280x720", 4) == 500_000
    assert estimate_micros(catalogue.get("sora-2-2026-01-01"), "1280x720", 4) == 400_000
    assert catalogue.get("sora-3-2025-10-06") is None
    assert catalogue.warnings(["sora-2-2025-10-06"])[1:] == [
        "PRICES_FILE prices veo-9, which the openai catalogue does not know; it is ignored"
    ]


# --- MODELS_FILE and PRICES_FILE ------------------------------------------------------------------


def test_models_file_overrides_key_by_key_and_adds_models(tmp_path: Path) -> None:
    models = write(
        tmp_path / "models.toml",
        """
[models."MUSE-VIDEO"]                      # a built-in model, given in part
label = "Muse (10 s clip)"
max_prompt_chars = 500
recommended = false

[models."MUSE-VIDEO".wire]
route = "muse"

[models."minimax/h3"]
usd_per_second = { default = 0.05, "1536x672" = 0.08 }

[models."wan-ai/wan-2.6-t2v"]
usd_per_second = 0.06
recommended = true

[models."acme/new"]                        # a new model, in full
label = "Acme"
seconds = [5, 10]
sizes = ["1920x1080", "1080x1920"]
image = true
audio = "optional"
remix = "frame"
usd_per_second = "0.125"
recommended = true
""",
    )
    catalogue = Catalogue.load("openai", models_file=models)
    muse = catalogue.get("muse-video")
    assert (muse.label, muse.max_prompt_chars, muse.seconds, muse.wire) == (
        "Muse (10 s clip)",
        500,
        (10,),
        {"route": "muse"},
    )
    assert [spec.id for spec in catalogue.offered()] == ["minimax/h3", "wan-ai/wan-2.6-t2v", "acme/new"]
    h3 = catalogue.get("minimax/h3")
    assert estimate_micros(h3, "1344x768", 10) == 500_000  # the table's default
    assert estimate_micros(h3, "1536X672", 10) == 800_000
    assert estimate_micros(catalogue.get("acme/new"), "1080x1920", 10) == 1_250_000
    assert catalogue.get("acme/new").audio is Audio.OPTIONAL


def test_prices_file_replaces_the_prices_of_the_models_it_names(tmp_path: Path) -> None:
    prices = write(tmp_path / "prices.json", '{"sora-2-pro": {"default": 0.35, "1792x1024": 0.6}}')
    catalogue = Catalogue.load("openai", prices_file=prices)
    pro = catalogue.get("sora-2-pro")
    assert per_second_micros(pro, "1792x1024") == 600_000
    assert per_second_micros(pro, "1024x1792") == 350_000  # the built-in 0.50 is gone
    assert per_second_micros(catalogue.get("sora-2"), "1280x720") == 100_000


def test_a_bad_models_file_names_file_model_and_key_one_line_each(tmp_path: Path) -> None:
    path = write(
        tmp_path / "models.toml",
        """
version = 2

[models."acme/a"]
label = "A"
seconds = [0, 5]
sizez = ["1280x720"]
audio = "loud"
usd_per_second = 0.1234567

[models."acme/b"]
label = "B"
seconds = [5]
sizes = ["1280x720", "big"]
remix = "sometimes"

[models."acme/c"]
label = "C"
seconds = [5]
sizes = ["1280x720"]
remix = "frame"
usd_per_second = { default = 0.1, "1920x1080" = 0.2 }

[models."Acme/C"]
label = "again"

[models."acme/d"]
usd_per_second = 0.1

[models."minimax/h3"]
image = "yes"

[models."muse-video"]
remix = "frame"
""",
    )
    with pytest.raises(PriceFileError) as raised:
        Catalogue.load("openai", models_file=path)
    assert raised.value.problems == [
        "unknown top-level key 'version'; each model goes in a [models.\"<id>\"] table.",
        "model 'acme/a': seconds must be a list of distinct whole seconds from 1 to 600, like [4, 8] "
        "(got [0, 5]).",
        "model 'acme/a': unknown key 'sizez'; did you mean 'sizes'?",
        'model \'acme/a\': audio must be "always" | "optional" | "none" (got \'loud\').',
        "model 'acme/a', usd_per_second: the price may have at most six decimals (got 0.1234567).",
        'model \'acme/b\': sizes must be a list of distinct sizes like ["1280x720", "720x1280"] '
        "(got ['1280x720', 'big']).",
        'model \'acme/b\': remix must be "native" | "frame" | "none" (got \'sometimes\').',
        "model 'Acme/C' is listed twice (model ids are compared ignoring case).",
        "model 'minimax/h3': image must be true or false (got 'yes').",
        # Entries that are fine on their own are also checked against the built-in catalogue.
        "model 'acme/c': remix = \"frame\" needs image = true (a remix starts from the first frame).",
        "model 'acme/c', usd_per_second: '1920x1080' is not one of its sizes (1280x720).",
        "model 'acme/d' needs label, seconds and sizes: only a built-in model may be given in part.",
        "model 'muse-video': remix = \"frame\" needs image = true (a remix starts from the first frame).",
    ]
    lines = str(raised.value).splitlines()
    assert len(lines) == 13 and all(line.startswith(f"MODELS_FILE {path}: ") for line in lines)


def test_a_bad_built_in_file_is_named_as_such(tmp_path: Path) -> None:
    write(tmp_path / "aimlapi.toml", '[models."x"]\nlabel = "X"\nseconds = [4]\n')
    with pytest.raises(PriceFileError) as raised:
        Catalogue.load("aimlapi", data_dir=tmp_path)
    assert str(raised.value) == (
        f"built-in catalogue {tmp_path / 'aimlapi.toml'}: "
        "model 'x' needs sizes: only a built-in model may be given in part."
    )
    write(tmp_path / "aimlapi.toml", "[models.x\n")
    with pytest.raises(PriceFileError, match="is not valid TOML"):
        Catalogue.load("aimlapi", data_dir=tmp_path)


# --- prices, sizes, words ---------------------------------------------------------------------------


def test_estimates_in_micro_dollars_by_size_and_default() -> None:
    spec = ModelSpec(
        "m",
        "M",
        (4, 8),
        ("1280x720", "1920x1080"),
        micros_per_second={"default": 50_000, "1920x1080": 80_000},
    )
    assert estimate_micros(spec, "1280x720", 8) == 400_000
    assert estimate_micros(spec, "1920x1080", 4) == 320_000
    only_sizes = ModelSpec("p", "P", (4,), ("1280x720", "720x1280"), micros_per_second={"1280x720": 300_000})
    assert estimate_micros(only_sizes, "1280x720", 12) == 3_600_000
    with pytest.raises(NoPriceError) as refused:
        estimate_micros(only_sizes, "720x1280", 4)
    assert (refused.value.model, refused.value.size) == ("p", "720x1280")
    with pytest.raises(ValueError, match="seconds"):
        estimate_micros(spec, "1280x720", 0)
    assert describe(spec) == "M · $0.05–$0.08/s"
    assert describe(only_sizes) == "P · no price"
    assert describe(Catalogue.load("openai").get("sora-2-pro")) == "Sora 2 Pro · $0.30–$0.50/s · retired"
    assert describe(Catalogue.load("openai").get("muse-video-30s")) == "Meta Muse 30 s · $0.026667/s"


def test_sizes_lengths_and_requests() -> None:
    assert [size_label(size) for size in ("1280x720", "720x1280", "1024x1024")] == [
        "1280x720 · landscape",
        "720x1280 · portrait",
        "1024x1024 · square",
    ]
    assert [
        size_for(*args) for args in [("16:9", "720p"), ("9:16", "480p"), ("1:1", "1080p"), ("21:9", "4K")]
    ] == [
        "1280x720",
        "480x854",
        "1080x1080",
        "5040x2160",
    ]
    assert size_for("wide", "720p") is None and size_for("16:9", "8K") is None
    catalogue = Catalogue.load("aimlapi")
    veo = catalogue.get("google/veo-3.1-t2v")
    assert [closest_seconds(veo, wanted) for wanted in (1, 5, 7, 30)] == [4, 4, 6, 8]
    assert catalogue.check_request("google/veo-3.1-t2v", "1920X1080", 6, image=True) is veo
    refusals = [
        ("sora-2", "1280x720", 4, False),
        ("google/veo-3.1-t2v", "1024x1024", 8, False),
        ("google/veo-3.1-t2v", "1280x720", 5, False),
    ]
    reasons = []
    for model, size, seconds, image in refusals:
        with pytest.raises(RequestRefused) as refused:
            catalogue.check_request(model, size, seconds, image=image)
        reasons.append(refused.value.reason)
    assert reasons == [
        "`sora-2` is not offered here. Choose one of: google/veo-3.1-t2v-fast, google/veo-3.1-t2v, "
        "klingai/video-v3-standard-text-to-video.",
        "Veo 3.1 cannot make 1024x1024 videos. Sizes it can make: 1280x720 · landscape, "
        "720x1280 · portrait, 1920x1080 · landscape, 1080x1920 · portrait.",
        "Veo 3.1 makes videos of 4, 6, 8 seconds, not 5.",
    ]
    with pytest.raises(RequestRefused, match="cannot start from an image"):
        Catalogue.load("openai").check_request("minimax/h3", "1344x768", 6, image=True)


# --- OpenRouter's list --------------------------------------------------------------------------------


def test_openrouter_models_are_read_from_a_realistic_payload() -> None:
    specs = {spec.id: spec for spec in specs_from_openrouter_models(OPENROUTER_MODELS)}
    assert list(specs) == [
        "google/veo-3.1",
        "google/veo-3.1-lite",
        "bytedance/seedance-2.0-fast",
        "alibaba/wan-2.7",
        "minimax/hailuo-2.3",
        "kwaivgi/kling-video-o1",
    ]
    assert specs["google/veo-3.1"] == ModelSpec(
        "google/veo-3.1",
        "Veo 3.1",
        (5, 8),
        ("1280x720",),
        image=True,
        audio=Audio.OPTIONAL,
        micros_per_second={},  # "generate" is not a price per second
        wire={"size_params": {"1280x720": LANDSCAPE_720}},
    )
    lite = specs["google/veo-3.1-lite"]
    assert lite.seconds == (4, 6, 8)
    assert lite.sizes == ("1280x720", "720x1280", "1920x1080", "1080x1920")
    assert lite.wire["size_params"]["1080x1920"] == {"resolution": "1080p", "aspect_ratio": "9:16"}
    assert lite.micros_per_second == {
        "1280x720": 500_000,
        "720x1280": 500_000,
        "1920x1080": 750_000,
        "1080x1920": 750_000,
    }
    seedance = specs["bytedance/seedance-2.0-fast"]
    assert seedance.seconds == tuple(range(4, 16))
    assert seedance.sizes == ("854x480", "480x854", "1280x720", "720x1280")
    assert seedance.micros_per_second == {}  # priced per token: not an estimate
    wan = specs["alibaba/wan-2.7"]
    assert (wan.seconds, wan.image, wan.audio) == ((5, 10), False, Audio.NONE)
    # The highest per-second rate for a size wins: image input with sound costs more at 1080p.
    assert wan.micros_per_second == {"854x480": 50_000, "1280x720": 100_000, "1920x1080": 250_000}
    hailuo = specs["minimax/hailuo-2.3"]
    assert hailuo.sizes == ("1920x1080", "1366x768")
    assert hailuo.wire == {
        "size_params": {"1920x1080": {"size": "1920x1080"}, "1366x768": {"size": "1366x768"}}
    }
    assert hailuo.micros_per_second == {"1920x1080": 45_000, "1366x768": 28_000}  # from cents
    assert (hailuo.image, hailuo.audio) == (True, Audio.NONE)
    kling = specs["kwaivgi/kling-video-o1"]
    assert (kling.seconds, kling.sizes, kling.micros_per_second, kling.wire) == ((), (), {}, {})
    assert specs_from_openrouter_models({"data": None}) == []
    assert specs_from_openrouter_models(["not", "the", "shape"]) == []


def test_provider_list_confirms_updates_withdraws_and_adds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        tmp_path / "openrouter.toml",
        """
[models."google/veo-3.1-lite"]
label = "Veo 3.1 Lite (ours)"
seconds = [6, 4, 8]
sizes = ["1280x720", "720x1280"]
image = true
audio = "always"
remix = "frame"
usd_per_second = 0.08
recommended = true

[models."google/veo-3.1-lite".wire]
size_fields = ["aspect_ratio", "resolution"]

[models."google/veo-3.1"]
label = "Veo 3.1"
seconds = [8]
sizes = ["1280x720"]
image = true
remix = "frame"
usd_per_second = 0.40
recommended = true

[models."alibaba/wan-2.7"]
label = "Wan 2.7"
seconds = [5]
sizes = ["1280x720"]
image = true
remix = "frame"
usd_per_second = 0.15

[models."bytedance/seedance-1-5-pro"]
label = "Seedance 1.5 Pro"
seconds = [5]
sizes = ["1280x720"]
usd_per_second = 0.2
recommended = true

[models."openai/sora-2-pro"]
label = "Sora 2 Pro"
seconds = [4]
sizes = ["1280x720"]
usd_per_second = 0.3
retired = true
""",
    )
    models = write(
        tmp_path / "models.toml",
        """
[models."google/veo-3.1"]
usd_per_second = 0.35

[models."acme/house"]
label = "House"
seconds = [5]
sizes = ["1280x720"]
usd_per_second = 0.01
recommended = true

[models."openai/sora-2-pro"]                # described in full: the operator says it is served
label = "Sora 2 Pro (our gateway)"
seconds = [4]
sizes = ["1280x720"]
""",
    )
    prices = write(tmp_path / "prices.toml", '"google/veo-3.1-lite" = 0.09\n')
    catalogue = Catalogue.load("openrouter", models_file=models, prices_file=prices, data_dir=tmp_path)
    before = ["google/veo-3.1-lite", "google/veo-3.1", "bytedance/seedance-1-5-pro", "acme/house"]
    assert [spec.id for spec in catalogue.offered()] == before

    with caplog.at_level(logging.INFO, logger="bot.catalogue"):
        change = catalogue.apply_provider_list(specs_from_openrouter_models(OPENROUTER_MODELS))
    assert change == ProviderListChange(
        added=("bytedance/seedance-2.0-fast", "minimax/hailuo-2.3", "kwaivgi/kling-video-o1"),
        withdrawn=("bytedance/seedance-1-5-pro",),
    )
    assert [r.getMessage() for r in caplog.records if "no longer lists" in r.getMessage()] == [
        "openrouter no longer lists bytedance/seedance-1-5-pro; it is withdrawn from the choices",
    ]
    assert [spec.label for spec in catalogue.offered(["openai/sora-2-pro"])] == ["Sora 2 Pro (our gateway)"]
    assert [spec.id for spec in catalogue.offered()] == [
        "google/veo-3.1-lite",
        "google/veo-3.1",
        "acme/house",
    ]

    lite = catalogue.get("google/veo-3.1-lite")
    assert lite.label == "Veo 3.1 Lite (ours)" and lite.remix is Remix.FRAME
    assert lite.seconds == (6, 4, 8)  # the provider's lengths, led by our default
    assert lite.sizes == ("1280x720", "720x1280", "1920x1080", "1080x1920")
    assert lite.audio is Audio.ALWAYS  # "can make sound" does not undo "always has sound"
    assert lite.micros_per_second == {"default": 90_000}  # PRICES_FILE wins over the provider's prices
    assert lite.wire["size_fields"] == ["aspect_ratio", "resolution"] and "size_params" in lite.wire
    veo = catalogue.get("google/veo-3.1")
    assert veo.seconds == (8, 5) and estimate_micros(veo, "1280x720", 8) == 2_800_000  # MODELS_FILE's 0.35
    wan = catalogue.get("alibaba/wan-2.7")
    assert (wan.image, wan.remix) == (False, Remix.NONE)  # the provider takes no first frame
    assert estimate_micros(wan, "1920x1080", 10) == 2_500_000  # the provider's price replaces ours
    assert catalogue.get("bytedance/seedance-1-5-pro") is not None  # old jobs can still be described

    wanted = ["alibaba/wan-2.7", "kwaivgi/kling-video-o1", "bytedance/seedance-1-5-pro", "minimax/hailuo-2.3"]
    assert [spec.id for spec in catalogue.offered(wanted)] == ["alibaba/wan-2.7", "minimax/hailuo-2.3"]
    assert catalogue.warnings(wanted) == [
        "kwaivgi/kling-video-o1 cannot be used as it is: its lengths or sizes are unknown; "
        "give seconds and sizes in MODELS_FILE",
        "bytedance/seedance-1-5-pro is no longer listed by openrouter, so it is not offered",
    ]

    # An empty answer is a fault, not "no models"; a model that comes back is offered again.
    assert catalogue.apply_provider_list([]) == ProviderListChange()
    assert [spec.id for spec in catalogue.offered()] == [
        "google/veo-3.1-lite",
        "google/veo-3.1",
        "acme/house",
    ]
    later = copy.deepcopy(OPENROUTER_MODELS)
    later["data"][0]["id"] = "bytedance/seedance-1-5-pro"
    change = catalogue.apply_provider_list(specs_from_openrouter_models(later))
    assert change == ProviderListChange(added=("bytedance/seedance-1-5-pro",), withdrawn=("google/veo-3.1",))
    assert [spec.id for spec in catalogue.offered()] == [
        "google/veo-3.1-lite",
        "bytedance/seedance-1-5-pro",
        "acme/house",
    ]


# --- the saved list -------------------------------------------------------------------------------------


async def test_the_provider_list_survives_a_restart_when_the_provider_is_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    specs = specs_from_openrouter_models(OPENROUTER_MODELS)
    db = await Database.open(tmp_path / "bot.sqlite3")
    try:
        await db.migrate()
        assert await load_provider_models(db, "openrouter") is None
        await save_provider_models(db, "openrouter", specs[:1], fetched_at=1_000)
        await save_provider_models(db, "openrouter", specs, fetched_at=2_000)  # replaces the first
        saved = await load_provider_models(db, "openrouter")
        assert saved is not None and saved.fetched_at == 2_000
        assert saved.specs == specs
        assert await load_provider_models(db, "fal") is None

        # After a restart with the provider down, the saved list gives the same choices.
        live = Catalogue.load("openrouter", data_dir=tmp_path)
        live.apply_provider_list(specs)
        restarted = Catalogue.load("openrouter", data_dir=tmp_path)
        restarted.apply_provider_list(saved.specs)
        wanted = [spec.id for spec in specs]
        assert restarted.offered(wanted) == live.offered(wanted) != []

        for broken in ('{"models": 1}', "{not json"):
            await db.execute(
                "UPDATE provider_models SET payload_json = ? WHERE family = ?", (broken, "openrouter")
            )
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="bot.catalogue"):
                assert await load_provider_models(db, "openrouter") is None
            assert "The saved openrouter model list cannot be read" in caplog.text
    finally:
        await db.close()
