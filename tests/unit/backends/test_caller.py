"""A caller's credentials: which request headers they are, and a client that carries none of dsr's."""

from __future__ import annotations

import pytest

from dsr.backends import Caller
from dsr.backends.client_options import ClientOptions, url_without_credentials
from dsr.settings import ConnectionSettings


def test_a_caller_is_the_authorization_and_cookie_headers_of_the_request_only():
    caller = Caller.from_headers([("Authorization", "Basic YTpi"), ("Cookie", "a=1"), ("cookie", "b=2"),
                                  ("Content-Type", "application/json"), ("X-Opaque-Id", "q1")])
    assert caller.headers == {"authorization": "Basic YTpi", "cookie": "a=1; b=2"}
    assert Caller.from_headers([("Accept", "*/*")]).headers == {}


def test_a_callers_credentials_are_never_printed():
    text = repr(Caller({"authorization": "Basic c2VjcmV0", "cookie": "session=s3cr3t"}))
    assert "c2VjcmV0" not in text and "s3cr3t" not in text and "authorization" in text


@pytest.mark.parametrize("settings", [{"api_key": "k"}, {"username": "dsr", "password": "pw"}])
def test_the_callers_client_keeps_the_tls_settings_and_drops_every_credential(settings):
    opts = ClientOptions.from_settings(ConnectionSettings("https://es.example:9200", ca_cert="/ca.pem",
                                                          **settings)).without_credentials()  # type: ignore[arg-type]
    assert (opts.api_key, opts.basic_auth, opts.verify) == (None, None, "/ca.pem")
    for kwargs in (opts.elasticsearch_kwargs(), opts.opensearch_kwargs()):
        assert not {"api_key", "basic_auth", "http_auth", "headers"} & set(kwargs)


@pytest.mark.parametrize(("url", "bare"), [
    ("https://dsr:secret@es.example:9200/prefix", "https://es.example:9200/prefix"),
    ("http://127.0.0.1:9200", "http://127.0.0.1:9200"),
])
def test_credentials_in_a_cluster_url_are_removed_for_callers(url, bare):
    assert url_without_credentials(url) == bare
