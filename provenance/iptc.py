"""The IPTC "Digital Source Type" vocabulary that C2PA actions and XMP use to disclose origin.

``parse_source_type`` accepts what people type (short names, any case, the full URI, the old
https spelling) and returns IPTC's canonical URI; ``short_source_type`` goes back for display.
"""

from __future__ import annotations

from provenance.errors import BadInputError

__all__ = [
    "DIGITAL_SOURCE_TYPES",
    "IPTC_DIGITAL_SOURCE_TYPE_BASE",
    "SOURCE_TYPE_NAMES",
    "parse_source_type",
    "short_source_type",
]

IPTC_DIGITAL_SOURCE_TYPE_BASE = "http://cv.iptc.org/newscodes/digitalsourcetype/"

# The IPTC "Digital Source Type" NewsCodes vocabulary (2024 revision).
_SOURCE_TYPE_NAMES = (
    "trainedAlgorithmicMedia",
    "compositeWithTrainedAlgorithmicMedia",
    "algorithmicallyEnhanced",
    "algorithmicMedia",
    "digitalCapture",
    "computationalCapture",
    "digitalCreation",
    "humanEdits",
    "minorHumanEdits",
    "compositeCapture",
    "compositeSynthetic",
    "composite",
    "dataDrivenMedia",
    "negativeFilm",
    "positiveFilm",
    "print",
    "screenCapture",
    "virtualRecording",
)

DIGITAL_SOURCE_TYPES: dict[str, str] = {
    name: IPTC_DIGITAL_SOURCE_TYPE_BASE + name for name in _SOURCE_TYPE_NAMES
}
"""Short IPTC name -> full IPTC digital source type URI."""

#: The short names, in IPTC's order.
SOURCE_TYPE_NAMES = _SOURCE_TYPE_NAMES


def parse_source_type(value: str) -> str:
    """Return the IPTC digital source type URI for a short name or a full URI.

    Short names match case-insensitively (``trainedalgorithmicmedia`` is accepted) because
    people type them; the returned URI always has IPTC's canonical spelling.

    Raises:
        BadInputError: the value is not in the IPTC vocabulary; the message lists the names.
    """
    if not isinstance(value, str) or not value.strip():
        raise BadInputError(_unknown_source_type_message(value))
    text = value.strip()
    name = text.removeprefix(IPTC_DIGITAL_SOURCE_TYPE_BASE)
    # Older documents use https; the vocabulary URIs are http.
    if text.startswith("https://cv.iptc.org/newscodes/digitalsourcetype/"):
        name = text.rsplit("/", 1)[-1]
    for known in _SOURCE_TYPE_NAMES:
        if known.lower() == name.lower():
            return DIGITAL_SOURCE_TYPES[known]
    raise BadInputError(_unknown_source_type_message(value))


def _unknown_source_type_message(value: object) -> str:
    return (
        f"unknown digital source type {value!r}; use one of: "
        + ", ".join(_SOURCE_TYPE_NAMES)
        + f" (or the full URI {IPTC_DIGITAL_SOURCE_TYPE_BASE}<name>)"
    )


def short_source_type(uri: str) -> str:
    """The short IPTC name of a digital source type URI (other strings unchanged)."""
    return uri.removeprefix(IPTC_DIGITAL_SOURCE_TYPE_BASE)
