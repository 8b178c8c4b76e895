"""One reading of the connection settings for every client dsr opens to a cluster."""

from __future__ import annotations

import ssl

import pytest

from dsr.backends.client_options import ClientOptions
from dsr.settings import ConnectionSettings


def options(**settings: object) -> ClientOptions:
    return ClientOptions.from_settings(ConnectionSettings("https://es.example:9200", **settings))  # type: ignore[arg-type]


def test_basic_auth_without_an_api_key():
    opts = options(username="elastic", password="pw")
    assert opts.basic_auth == ("elastic", "pw") and opts.auth_headers == {}
    assert opts.elasticsearch_kwargs()["basic_auth"] == ("elastic", "pw")
    assert opts.opensearch_kwargs()["http_auth"] == ("elastic", "pw")
    assert opts.httpx_kwargs()["auth"] == ("elastic", "pw")


def test_an_api_key_is_the_credential_when_both_are_given():
    opts = options(username="elastic", password="pw", api_key="KEY")
    assert opts.basic_auth is None and opts.auth_headers == {"Authorization": "ApiKey KEY"}
    es, os_ = opts.elasticsearch_kwargs(), opts.opensearch_kwargs()
    assert es["api_key"] == "KEY" and "basic_auth" not in es  # the Elasticsearch client refuses both
    assert os_["headers"] == {"Authorization": "ApiKey KEY"} and "http_auth" not in os_
    assert opts.httpx_kwargs()["auth"] is None


def test_a_ca_bundle_is_verified_against_and_insecure_turns_verification_off():
    import certifi

    ca = certifi.where()
    opts = options(ca_cert=ca)
    assert opts.verify == ca and isinstance(opts.ssl_verify(), ssl.SSLContext)
    assert opts.elasticsearch_kwargs()["ca_certs"] == ca and opts.opensearch_kwargs()["ca_certs"] == ca
    insecure = options(ca_cert=ca, verify_certs=False)
    assert insecure.verify is False and insecure.ssl_verify() is False
    es = insecure.elasticsearch_kwargs()
    assert "ca_certs" not in es and es["verify_certs"] is False and es["ssl_show_warn"] is False
    assert insecure.opensearch_kwargs()["verify_certs"] is False
    assert options().verify is True and options().ssl_verify() is True


@pytest.mark.parametrize("settings", [{}, {"username": "u"}, {"api_key": "k", "username": "u"}])
def test_every_client_builds_from_the_options(settings):
    import elasticsearch
    import opensearchpy

    opts = options(**settings)
    elasticsearch.Elasticsearch("https://es.example:9200", **opts.elasticsearch_kwargs()).close()
    opensearchpy.OpenSearch(["https://es.example:9200"], **opts.opensearch_kwargs()).close()
