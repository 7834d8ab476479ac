"""`python -m bot check`: is the provider reachable, does it take our key, which offered models can run?

No Discord, no money spent: only read-only calls (the model list, the job list, or a status request
for a job that does not exist). Exit 0 only when the provider answers and one offered model is usable.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from bot.catalogue import ModelSpec, describe, size_label, unusable_reason
from bot.offer import Offer
from bot.settings import Settings
from bot.videos import (
    AuthenticationError,
    BillingError,
    NotFoundError,
    ProviderUnavailableError,
    UnsupportedOperation,
    VideoAPIError,
    VideoClient,
    create_video_client,
)

PROBE_ID = "soracord-check"
SHUT_DOWN = (
    "this provider no longer serves video generation at {base} (HTTP {status} on its video routes); "
    "OpenAI shut Sora down on 2026-09-24 — see README for providers that work"
)


@dataclass(frozen=True)
class Probe:
    problem: str | None  # None when the provider answered as a live one
    learnt: str = ""
    models: list[ModelSpec] | None = None  # the provider's own list, where it publishes one


async def probe(client: VideoClient, base: str) -> Probe:
    list_missing = False  # a 404 on the probe job means "shut down" only when listing was refused too
    try:
        models = await client.list_models()
        if models is not None:
            # The list may be public (OpenRouter's is), so it proves nothing about the key: ask for
            # a job that does not exist, which a wrong key gets a 401 for.
            try:
                await client.retrieve(PROBE_ID)
            except AuthenticationError:
                raise
            except VideoAPIError:
                pass  # "no such job" (or any other refusal of it): the key was accepted
            return Probe(None, f"the provider lists {len(models)} video model(s)", models)
        if client.can_list:
            try:
                await client.list_recent(limit=1)
                return Probe(None, "the provider answers and accepts the key")
            except UnsupportedOperation:
                list_missing = True  # a gateway without the list route, or no video routes at all
        await client.retrieve(PROBE_ID)
        return Probe(None, "the provider answers and accepts the key")
    except BillingError as error:
        return Probe(f"the provider accepts the key but the account has no credits: {error.message}")
    except AuthenticationError as error:
        return Probe(f"the provider refused VIDEO_API_KEY ({error}); copy the key again")
    except NotFoundError as error:
        if error.status in (404, 410) and list_missing:
            return Probe(SHUT_DOWN.format(base=base, status=error.status))
        if error.status is None:
            return Probe(None, "the key can't be checked without making a video; the first video checks it")
        return Probe(None, "the provider answers and accepts the key")  # e.g. New-API's 400 task_not_exist
    except ProviderUnavailableError as error:
        return Probe(f"cannot reach the provider at {base}: {error.message}")
    except VideoAPIError as error:
        return Probe(f"the provider answered with an error: {error}")


def model_lines(offer: Offer) -> tuple[list[str], int]:
    """One line per offered model (usable, or why not), and how many are usable."""
    lines, usable = [], 0
    wanted = offer.video_models or [spec.id for spec in offer.models()]
    for model_id in wanted:
        spec = offer.catalogue.get(model_id)
        if spec is None:
            lines.append(f"  ✗ {model_id}: unknown model; describe it in MODELS_FILE")
            continue
        reason = unusable_reason(spec)
        if spec not in offer.models() and reason is None:
            reason = "the provider no longer lists it"
        if reason is not None:
            lines.append(f"  ✗ {model_id}: {reason}")
            continue
        usable += 1
        lengths = "/".join(str(seconds) for seconds in spec.seconds)
        sizes = ", ".join(size_label(size) for size in spec.sizes)
        retired = " (retired: the provider may refuse it)" if spec.retired else ""
        lines.append(f"  ✓ {model_id}: {describe(spec)} · {lengths} s · {sizes}{retired}")
    return lines, usable


async def run_check(settings: Settings, offer: Offer) -> int:
    base = settings.api_base
    async with aiohttp.ClientSession() as session:
        client = create_video_client(
            settings.video_provider, base, settings.video_api_key.get_secret_value(), session
        )
        result = await probe(client, base)
    if result.models:
        offer.catalogue.apply_provider_list(result.models)
    print(f"Provider: {settings.video_provider} at {base}")
    if result.problem is not None:
        print(f"✗ {result.problem}")
        return 1
    print(f"✓ {result.learnt}")
    lines, usable = model_lines(offer)
    print("Offered models:")
    print("\n".join(lines))
    if not usable:
        print("✗ no offered model can be used; fix VIDEO_MODELS or MODELS_FILE")
        return 1
    print(f"✓ {usable} model(s) ready")
    return 0
