"""The request and response bodies, as pydantic models: they validate what `/predict` and
`POST /` take, and make the schema that `/docs` shows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "Inputs",
    "PredictRequest",
    "InferenceParameters",
    "InferenceRequest",
    "Prediction",
    "Truncated",
    "Record",
    "ErrorBody",
    "PredictResponse",
    "ERROR_RESPONSES",
]

Inputs = str | list[str] | list[tuple[str, str]]


class PredictRequest(BaseModel):
    """TEI's `/predict` body, plus `details` for our full records."""

    inputs: Inputs = Field(
        description="a text, a list of texts, or a list of [text_a, text_b] pairs (pair tasks)",
        examples=["a gem of a film"],
    )
    raw_scores: bool = Field(False, description="the model's logits instead of probabilities")
    truncate: bool = Field(
        True, description="read a text longer than the model's max_length up to it; false: answer 413 instead"
    )
    details: bool = Field(
        False,
        description="answer with predict's records (probabilities, labels, truncated, "
        "skipped, rescored) instead of TEI's lists",
    )


class InferenceParameters(BaseModel):
    top_k: int | None = Field(None, ge=1, description="keep the K most probable labels")
    function_to_apply: Literal["sigmoid", "softmax", "none"] | None = Field(
        None,
        description="'none': logits; otherwise it must be the model's own function "
        "(softmax single-label, sigmoid multi-label), which is the default",
    )


class InferenceRequest(BaseModel):
    """The Hugging Face Inference API body that `InferenceClient.text_classification` posts to
    a base URL."""

    inputs: Inputs
    parameters: InferenceParameters = Field(
        default_factory=lambda: InferenceParameters(top_k=None, function_to_apply=None)
    )


class Prediction(BaseModel):
    label: str
    score: float


class Truncated(BaseModel):
    tokens_read: int
    tokens: int


class Record(BaseModel):
    """One input's `predict` record (fields absent where they do not apply)."""

    label: str | None = None
    score: float | None = None
    probabilities: dict[str, float] | None = None
    labels: list[str] | None = Field(None, description="multi-label: every label decided on")
    truncated: Truncated | None = None
    skipped: str | None = Field(None, description="'empty text': no label was given")
    windows: int | None = Field(
        None, description="long_text 'chunks' only: the windows of max_length tokens the text was read in"
    )
    rescored: bool | None = Field(
        None,
        description="precision 'mixed' only: true when the bf16 answer was a close call and "
        "fp32 computed it again",
    )


class ErrorBody(BaseModel):
    error: str
    error_type: str


PredictResponse = list[Prediction] | list[list[Prediction]] | Record | list[Record]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 413, 422, 500, 503)
}
