import pytest

from core.amocrm.errors import HostNotAllowed
from core.amocrm.hosts import check_url, host_allowed, is_loopback

AMO = ("*.amocrm.ru", "*.amocrm.com", "*.kommo.com")
LOCAL = AMO + ("127.0.0.1", "localhost", "::1")


@pytest.mark.parametrize(
    "host",
    ["a.amocrm.ru", "A.AmoCRM.ru", "a.b.amocrm.ru", "a.amocrm.ru:443", "sub.kommo.com", "x.amocrm.com.", "a-b.amocrm.ru"],
)
def test_wildcard_matches_subdomains(host):
    assert host_allowed(host, AMO)


@pytest.mark.parametrize(
    "host",
    ["amocrm.ru", "evilamocrm.ru", "amocrm.ru.evil.com", "a.amocrm.ru.evil.com", "evil.com", "", None,
     "a..amocrm.ru", ".amocrm.ru", "a.amocrm.ru%2e.evil.com", "kommo.com"],
)
def test_wildcard_rejects_others(host):
    assert not host_allowed(host, AMO)


def test_exact_patterns_and_ports():
    assert host_allowed("127.0.0.1", LOCAL)
    assert host_allowed("127.0.0.1:5001", LOCAL)
    assert host_allowed("LOCALHOST:8080", LOCAL)
    assert host_allowed("[::1]:8080", LOCAL)
    assert not host_allowed("127.0.0.2", LOCAL)
    assert not host_allowed("localhost.evil.com", LOCAL)
    assert host_allowed("sub.amocrm.ru", ("sub.amocrm.ru:443",))
    assert not host_allowed("other.amocrm.ru", ("sub.amocrm.ru",))
    # Only a leading "*." is a wildcard.
    assert not host_allowed("api-a.amocrm.ru", ("api-*.amocrm.ru",))
    assert not host_allowed("anything.com", ("*",))


def test_is_loopback():
    for host in ("127.0.0.1", "127.5.6.7", "::1", "[::1]:80", "localhost", "LocalHost:5000"):
        assert is_loopback(host), host
    for host in ("10.0.0.1", "a.amocrm.ru", "localhost.evil.com", "", None, "128.0.0.1"):
        assert not is_loopback(host), host


def test_check_url_normalises():
    assert check_url("HTTPS://Sub.AmoCRM.ru/api/v4/account?x=1#frag", AMO) == "https://sub.amocrm.ru/api/v4/account?x=1"
    assert check_url("https://sub.amocrm.ru", AMO) == "https://sub.amocrm.ru"
    assert check_url("https://sub.amocrm.ru/", AMO) == "https://sub.amocrm.ru/"
    assert check_url("https://sub.amocrm.ru:8443/oauth2/access_token", AMO) == "https://sub.amocrm.ru:8443/oauth2/access_token"
    assert check_url("http://127.0.0.1:5001/oauth2/access_token", LOCAL) == "http://127.0.0.1:5001/oauth2/access_token"
    assert check_url("http://localhost:5001/x", LOCAL) == "http://localhost:5001/x"
    assert check_url("http://[::1]:5001/x", LOCAL) == "http://[::1]:5001/x"


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/api/v4/account",
        "https://amocrm.ru/oauth2/access_token",
        "https://evilamocrm.ru/",
        "ftp://a.amocrm.ru/",
        "a.amocrm.ru/api",
        "https://user:pw@a.amocrm.ru/",
        "https://a.amocrm.ru@evil.com/",
        "https://evil.com\\@a.amocrm.ru/",
        "https://a.amocrm.ru /",
        "https://a.amocrm.ru:99999/",
        "",
        "javascript:alert(1)",
    ],
)
def test_check_url_refuses(url):
    with pytest.raises(HostNotAllowed):
        check_url(url, AMO)


def test_plain_http_only_to_loopback():
    patterns = AMO + ("127.0.0.1", "sandbox.internal")
    with pytest.raises(HostNotAllowed, match="http"):
        check_url("http://a.amocrm.ru/api/v4/account", patterns)
    with pytest.raises(HostNotAllowed):
        check_url("http://sandbox.internal/api", patterns)  # allowed host, but not loopback
    assert check_url("https://sandbox.internal/api", patterns) == "https://sandbox.internal/api"
    # Loopback still has to be on the allowlist.
    with pytest.raises(HostNotAllowed):
        check_url("http://127.0.0.1:5001/", AMO)


def test_message_is_human_and_names_setting():
    with pytest.raises(HostNotAllowed) as info:
        check_url("https://evil.example.com/x", AMO)
    assert "evil.example.com" in str(info.value)
    assert "AMOCRM_ALLOWED_HOSTS" in str(info.value)
