"""The media type of a body dsr reads is negotiated as each engine negotiates it."""

from __future__ import annotations

import pytest

from dsr.server.errors import RequestError
from dsr.server.media import MediaType, MediaTypeNotSupported, negotiate, not_supported_response

COMPATIBLE = "application/vnd.elasticsearch+json;compatible-with=8"


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch", "embedded"])
def test_json_is_read_and_answered_as_json(flavor):
    assert negotiate("application/json", None, flavor) == MediaType("application/json")
    assert negotiate("Application/JSON; charset=UTF-8", "*/*", flavor) == MediaType("application/json")
    assert negotiate("application/x-ndjson", None, flavor) == MediaType("application/json")


def test_elasticsearchs_compatible_type_is_answered_in_kind_when_both_headers_carry_it():
    assert negotiate(COMPATIBLE, COMPATIBLE, "elasticsearch") == MediaType(COMPATIBLE)
    seven = "application/vnd.elasticsearch+json; compatible-with=7"
    assert negotiate(seven, seven, "elasticsearch").answer.endswith("compatible-with=7")


@pytest.mark.parametrize(("content_type", "accept"), [
    (COMPATIBLE, None), (COMPATIBLE, "application/json"), ("application/json", COMPATIBLE),
    (COMPATIBLE, COMPATIBLE.replace("8", "7")), (COMPATIBLE.replace("8", "9"), COMPATIBLE.replace("8", "9")),
])
def test_the_compatible_type_used_inconsistently_is_a_400(content_type, accept):
    with pytest.raises(RequestError) as e:
        negotiate(content_type, accept, "elasticsearch")
    assert e.value.status == 400 and e.value.error_type == "media_type_header_exception"


def test_opensearch_does_not_read_the_compatible_type():
    with pytest.raises(MediaTypeNotSupported):
        negotiate(COMPATIBLE, COMPATIBLE, "opensearch")
    assert negotiate("application/json", COMPATIBLE, "opensearch") == MediaType()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_types_no_engine_reads_are_a_406_in_the_engines_short_shape(content_type):
    with pytest.raises(MediaTypeNotSupported) as e:
        negotiate(content_type, None, "elasticsearch")
    response = not_supported_response(e.value)
    assert response.status_code == 406
    assert response.body == (b'{"error":"Content-Type header [' + (content_type or "").encode()
                             + b'] is not supported","status":406}')


def test_an_empty_header_is_a_400_of_each_engines_type():
    for flavor, kind in [("elasticsearch", "media_type_header_exception"),
                         ("opensearch", "content_type_header_exception")]:
        with pytest.raises(RequestError) as e:
            negotiate("", None, flavor)
        assert e.value.status == 400 and e.value.error_type == kind


def test_yaml_cbor_and_smile_are_the_engines_to_read():
    assert negotiate("application/yaml", None, "elasticsearch") is None
    assert negotiate("application/smile", None, "opensearch") is None
