"""The mock upstream behaves like OpenAI's embeddings and images APIs and Fal's APIs."""

from __future__ import annotations

import base64
import json
import math
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from mockserver.fal import IMAGE_SIZES


def _mock(**directive: Any) -> str:
    return "!mock " + json.dumps(directive)


def _png_size(data: bytes) -> tuple[int, int]:
    """Checks the PNG's signature and chunk CRCs; returns its width and height."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(tag + body) == crc
        chunks.append(tag)
        pos += 12 + length
    assert chunks == [b"IHDR", b"IDAT", b"IEND"]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def client(mock_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{mock_url}/v1", api_key=api_key, max_retries=0, _strict_response_validation=True
    )


@pytest.fixture
def sdk_default(mock_url: str, api_key: str) -> openai.OpenAI:
    # Strict validation runs before the SDK decodes its default base64 embeddings.
    return openai.OpenAI(base_url=f"{mock_url}/v1", api_key=api_key, max_retries=0)


@pytest.fixture
def fal(mock_url: str, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock_url, headers={"Authorization": f"Key {api_key}"}) as c:
        yield c


# ---------------------------------------------------------------- embeddings


def test_it_embeds_strings_as_deterministic_unit_vectors(client: openai.OpenAI) -> None:
    resp = client.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "hi"], encoding_format="float"
    )
    assert (resp.object, resp.model) == ("list", "text-embedding-3-small")
    assert [d.index for d in resp.data] == [0, 1]
    first = resp.data[0].embedding
    assert len(first) == 1536
    assert math.isclose(math.fsum(v * v for v in first), 1.0, rel_tol=1e-5)
    assert first != resp.data[1].embedding
    again = client.embeddings.create(
        model="text-embedding-3-small", input="hello world", encoding_format="float"
    )
    assert again.data[0].embedding == first
    assert (resp.usage.prompt_tokens, resp.usage.total_tokens) == (3, 3)


def test_base64_and_float_encodings_agree(
    client: openai.OpenAI, sdk_default: openai.OpenAI, mock_url: str, api_key: str
) -> None:
    # The SDK asks for base64 by default and decodes it to floats.
    decoded = sdk_default.embeddings.create(model="text-embedding-3-large", input="same text")
    floats = client.embeddings.create(
        model="text-embedding-3-large", input="same text", encoding_format="float"
    )
    assert len(decoded.data[0].embedding) == 3072
    assert decoded.data[0].embedding == floats.data[0].embedding
    raw = httpx.post(
        f"{mock_url}/v1/embeddings",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"model": "text-embedding-3-large", "input": "same text", "encoding_format": "base64"},
    ).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack("<3072f", packed)) == floats.data[0].embedding


def test_dimensions_shorten_and_renormalise(client: openai.OpenAI) -> None:
    full = (
        client.embeddings.create(model="text-embedding-3-small", input="x", encoding_format="float")
        .data[0]
        .embedding
    )
    short = (
        client.embeddings.create(
            model="text-embedding-3-small", input="x", dimensions=4, encoding_format="float"
        )
        .data[0]
        .embedding
    )
    assert len(short) == 4
    assert math.isclose(math.fsum(v * v for v in short), 1.0, rel_tol=1e-5)
    norm = math.sqrt(math.fsum(v * v for v in full[:4]))
    assert all(
        math.isclose(s, f / norm, rel_tol=1e-4) for s, f in zip(short, full[:4], strict=True)
    )


def test_it_embeds_token_arrays(client: openai.OpenAI) -> None:
    resp = client.embeddings.create(
        model="text-embedding-3-small", input=[[1, 2, 3], [4]], encoding_format="float"
    )
    assert len(resp.data) == 2 and resp.usage.prompt_tokens == 4
    single = client.embeddings.create(
        model="text-embedding-3-small", input=[1, 2, 3], encoding_format="float"
    )
    assert single.data[0].embedding == resp.data[0].embedding


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": "hi"}, "you must provide a model parameter"),
        ({"model": "text-embedding-3-small"}, "Missing required parameter: 'input'."),
        ({"model": "text-embedding-3-small", "input": ""}, "'$.input' is invalid."),
        ({"model": "text-embedding-3-small", "input": ["ok", ""]}, "'$.input' is invalid."),
        (
            {"model": "text-embedding-3-small", "input": "hi", "encoding_format": "int8"},
            "Invalid value: 'int8'.",
        ),
        (
            {"model": "text-embedding-ada-002", "input": "hi", "dimensions": 8},
            "This model does not support specifying dimensions.",
        ),
        (
            {"model": "text-embedding-3-small", "input": "hi", "dimensions": 5000},
            "Invalid 'dimensions': integer above maximum value.",
        ),
        (
            {"model": "text-embedding-3-small", "input": _mock(colour="red")},
            "Invalid !mock directive: unknown key 'colour'.",
        ),
    ],
)
def test_embeddings_validate_like_the_api(
    mock_url: str, api_key: str, body: dict[str, Any], message: str
) -> None:
    resp = httpx.post(
        f"{mock_url}/v1/embeddings", headers={"Authorization": f"Bearer {api_key}"}, json=body
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"].startswith(message)


def test_embeddings_apply_directives(sdk_default: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        sdk_default.embeddings.create(
            model="text-embedding-3-small", input=[_mock(status=429, retry_after=2)]
        )
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"
    usage = sdk_default.embeddings.create(
        model="text-embedding-3-small", input=_mock(prompt_tokens=50)
    ).usage
    assert (usage.prompt_tokens, usage.total_tokens) == (50, 50)


def test_embeddings_require_the_key(mock_url: str) -> None:
    resp = httpx.post(
        f"{mock_url}/v1/embeddings", headers={"Authorization": "Bearer sk-wrong"}, json={}
    )
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"


# -------------------------------------------------------------------- images


def test_it_generates_image_urls_it_serves(client: openai.OpenAI) -> None:
    resp = client.images.generate(model="dall-e-2", prompt="a red fox", n=2, size="256x256")
    assert resp.created > 0 and len(resp.data or []) == 2
    urls = [image.url or "" for image in resp.data or []]
    assert len(set(urls)) == 2 and all("/files/" in u and u.endswith(".png") for u in urls)
    fetched = httpx.get(urls[0])  # no key, like a pre-signed URL
    assert (fetched.status_code, fetched.headers["content-type"]) == (200, "image/png")
    assert _png_size(fetched.content) == (256, 256)
    assert resp.data is not None and resp.data[0].revised_prompt is None


def test_it_returns_base64_images(client: openai.OpenAI) -> None:
    resp = client.images.generate(
        model="dall-e-3", prompt="a red fox", size="1792x1024", response_format="b64_json"
    )
    assert resp.data is not None
    (image,) = resp.data
    assert _png_size(base64.b64decode(image.b64_json or "")) == (1792, 1024)
    assert image.revised_prompt == "a red fox"
    again = client.images.generate(
        model="dall-e-3", prompt="a red fox", size="1792x1024", response_format="b64_json"
    )
    assert again.data is not None and again.data[0].b64_json == image.b64_json


def test_gpt_image_models_answer_base64_with_usage(client: openai.OpenAI) -> None:
    resp = client.images.generate(
        model="gpt-image-1", prompt="a red fox", size="1536x1024", quality="high", n=2
    )
    assert resp.data is not None and all(i.b64_json and not i.url for i in resp.data)
    assert (resp.size, resp.quality, resp.output_format) == ("1536x1024", "high", "png")
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (3, 2 * 6240)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "dall-e-2"}, "Missing required parameter: 'prompt'."),
        (
            {"model": "dall-e-2", "prompt": "x", "size": "1792x1024"},
            "Invalid value: '1792x1024'. Supported values are: '256x256', '512x512', and '1024x1024'.",
        ),
        ({"model": "dall-e-3", "prompt": "x", "n": 2}, "You must provide n=1 for this model."),
        (
            {"model": "dall-e-3", "prompt": "x", "quality": "ultra"},
            "Invalid value: 'ultra'. Supported values are: 'standard' and 'hd'.",
        ),
        (
            {"model": "gpt-image-1", "prompt": "x", "response_format": "url"},
            "Unknown parameter: 'response_format'.",
        ),
        ({"prompt": "x", "n": 11}, "Invalid 'n'"),
    ],
)
def test_images_validate_like_the_api(
    mock_url: str, api_key: str, body: dict[str, Any], message: str
) -> None:
    resp = httpx.post(
        f"{mock_url}/v1/images/generations",
        headers={"Authorization": f"Bearer {api_key}"},
        json=body,
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith(message)


def test_images_apply_status_directives(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.images.generate(prompt=_mock(status=500))


# ----------------------------------------------------------------------- fal


def test_fal_runs_synchronously(fal: httpx.Client) -> None:
    resp = fal.post(
        "/fal-ai/flux/schnell",
        json={"prompt": "a red fox", "image_size": "square_hd", "num_images": 2},
    )
    assert resp.status_code == 200 and resp.headers["x-fal-request-id"]
    result = resp.json()
    assert set(result) == {"images", "timings", "seed", "has_nsfw_concepts", "prompt"}
    assert result["prompt"] == "a red fox" and result["has_nsfw_concepts"] == [False, False]
    assert result["timings"] == {"inference": 0.2}
    first = result["images"][0]
    assert (first["width"], first["height"], first["content_type"]) == (1024, 1024, "image/png")
    assert _png_size(httpx.get(first["url"]).content) == (1024, 1024)
    again = fal.post(
        "/fal-ai/flux/schnell", json={"prompt": "a red fox", "image_size": "square_hd"}
    ).json()
    assert again["seed"] == result["seed"]  # derived from the prompt


@pytest.mark.parametrize("preset", list(IMAGE_SIZES))
def test_fal_knows_the_image_size_presets(fal: httpx.Client, preset: str) -> None:
    image = fal.post("/fal-ai/flux/dev", json={"prompt": "x", "image_size": preset}).json()[
        "images"
    ][0]
    assert (image["width"], image["height"]) == IMAGE_SIZES[preset]


def test_fal_takes_custom_sizes_seeds_and_sync_mode(fal: httpx.Client) -> None:
    body = {"prompt": "x", "image_size": {"width": 64, "height": 48}, "seed": 7, "sync_mode": True}
    result = fal.post("/fal-ai/flux/schnell", json=body).json()
    assert result["seed"] == 7
    url = result["images"][0]["url"]
    assert url.startswith("data:image/png;base64,")
    assert _png_size(base64.b64decode(url.split(",", 1)[1])) == (64, 48)


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({}, ["body", "prompt"], "missing"),
        ({"prompt": "x", "image_size": "huge"}, ["body", "image_size"], "literal_error"),
        ({"prompt": "x", "num_images": 5}, ["body", "num_images"], "less_than_equal"),
    ],
)
def test_fal_validates_input_with_422(
    fal: httpx.Client, body: dict[str, Any], loc: list[str], type_: str
) -> None:
    resp = fal.post("/fal-ai/flux/schnell", json=body)
    assert resp.status_code == 422
    (detail,) = resp.json()["detail"]
    assert (detail["loc"], detail["type"]) == (loc, type_)


def test_fal_requires_its_key_header(mock_url: str, api_key: str) -> None:
    body = {"prompt": "x"}
    for headers in ({}, {"Authorization": f"Bearer {api_key}"}, {"Authorization": "Key wrong"}):
        resp = httpx.post(f"{mock_url}/fal-ai/flux/schnell", json=body, headers=headers)
        assert resp.status_code == 401 and isinstance(resp.json()["detail"], str)


def test_fal_applies_status_directives(fal: httpx.Client) -> None:
    resp = fal.post(
        "/fal-ai/flux/schnell", json={"prompt": _mock(status=503, retry_after=4, message="busy")}
    )
    assert (resp.status_code, resp.json()) == (503, {"detail": "busy"})
    assert (resp.headers["retry-after"], resp.headers["x-fal-retryable"]) == ("4", "true")
    typo = fal.post("/fal-ai/flux/schnell", json={"prompt": _mock(colour="red")})
    assert typo.status_code == 400


def test_fal_queue_moves_through_its_states(fal: httpx.Client, mock_url: str) -> None:
    submitted = fal.post(
        "/queue/fal-ai/flux/schnell", json={"prompt": "a red fox", "image_size": "square"}
    )
    assert submitted.status_code == 200
    handle = submitted.json()
    request_id = handle["request_id"]
    base = f"{mock_url}/queue/fal-ai/flux/requests/{request_id}"  # no sub-path, as Fal's
    assert handle == {
        "status": "IN_QUEUE",
        "request_id": request_id,
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
        "queue_position": 1,
    }
    early = fal.get(handle["response_url"])
    assert (early.status_code, early.json()) == (400, {"detail": "Request is still in progress"})
    polls = [fal.get(handle["status_url"]).json() for _ in range(3)]
    assert [p["status"] for p in polls] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert polls[0]["queue_position"] == 0 and "queue_position" not in polls[1]
    assert all(p["logs"] is None for p in polls)
    assert polls[2]["metrics"] == {"inference_time": 0.1}
    result = fal.get(handle["response_url"]).json()
    sync = fal.post(
        "/fal-ai/flux/schnell", json={"prompt": "a red fox", "image_size": "square"}
    ).json()
    assert {k: v for k, v in result.items() if k != "images"} == {
        k: v for k, v in sync.items() if k != "images"
    }
    assert result["images"][0]["width"] == 512
    cancel = fal.put(handle["cancel_url"])
    assert (cancel.status_code, cancel.json()) == (400, {"status": "ALREADY_COMPLETED"})


def test_fal_queue_polls_are_set_by_directives_and_show_logs(fal: httpx.Client) -> None:
    prompt = _mock(in_queue=0, in_progress=2)
    handle = fal.post("/queue/fal-ai/flux/schnell", json={"prompt": prompt}).json()
    states = [fal.get(handle["status_url"], params={"logs": 1}).json() for _ in range(3)]
    assert [s["status"] for s in states] == ["IN_PROGRESS", "IN_PROGRESS", "COMPLETED"]
    assert states[0]["logs"][0]["message"] == "Generating images"


def test_fal_queue_jobs_can_fail(fal: httpx.Client) -> None:
    prompt = _mock(in_queue=0, in_progress=0, job_status=500, message="runner crashed")
    handle = fal.post("/queue/fal-ai/flux/schnell", json={"prompt": prompt}).json()
    status = fal.get(handle["status_url"]).json()
    assert (status["status"], status["error"]) == ("COMPLETED", "runner crashed")
    result = fal.get(handle["response_url"])
    assert (result.status_code, result.json()) == (500, {"detail": "runner crashed"})
    invalid = fal.post("/queue/fal-ai/flux/schnell", json={"prompt": "x", "num_images": 9}).json()
    assert fal.post("/queue/fal-ai/flux/schnell", json={}).status_code == 422
    fal.get(invalid["status_url"])
    fal.get(invalid["status_url"])
    assert fal.get(invalid["status_url"]).json()["status"] == "COMPLETED"
    assert fal.get(invalid["response_url"]).status_code == 422


def test_fal_queue_cancels_and_forgets_nothing_else(fal: httpx.Client, mock_url: str) -> None:
    handle = fal.post("/queue/fal-ai/flux/schnell", json={"prompt": "x"}).json()
    cancel = fal.put(handle["cancel_url"])
    assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    status = fal.get(handle["status_url"]).json()
    assert (status["status"], status["error_type"]) == ("COMPLETED", "client_cancelled")
    assert fal.get(handle["response_url"]).status_code == 499
    unknown = fal.get(f"{mock_url}/queue/fal-ai/flux/requests/nope/status")
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Request not found"})
    other_app = handle["status_url"].replace("/fal-ai/flux/", "/fal-ai/other/")
    assert fal.get(other_app).status_code == 404


def test_fal_queue_keeps_namespaces_in_its_urls(fal: httpx.Client, mock_url: str) -> None:
    handle = fal.post("/queue/workflows/me/my-flow", json={"prompt": "x"}).json()
    assert handle["status_url"].startswith(f"{mock_url}/queue/workflows/me/my-flow/requests/")
