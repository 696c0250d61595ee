"""Configuration: typed values, defaults, fragments, and errors naming the option."""

from __future__ import annotations

import pytest

from stratus.common.config import Config, ConfigError
from stratus.identity import settings  # noqa: F401 - registers [identity]


def write(tmp_path, text, name="stratus.conf"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_when_the_option_is_absent(tmp_path):
    config = Config(write(tmp_path, "[identity]\n"))
    assert config.get("identity", "bind_port") == 5000
    assert config.get("database", "connection").startswith("sqlite:")
    assert config.section("identity").token_expiration == 3600


def test_typed_values(tmp_path):
    config = Config(write(tmp_path, "[DEFAULT]\ndebug = yes\n[identity]\nworkers = 4\n"))
    assert config.get("DEFAULT", "debug") is True
    assert config.get("identity", "workers") == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[identity]\nbind_port = eighty\n", "[identity] bind_port"),
        ("[identity]\nworkers = 0\n", "below the minimum"),
        ("[DEFAULT]\ndebug = maybe\n", "not a boolean"),
        ("[DEFAULT]\nlog_format = xml\n", "not one of json, text"),
    ],
)
def test_bad_values_name_the_option(tmp_path, text, message):
    config = Config(write(tmp_path, text))
    section, _, rest = text.partition("]\n")
    name = rest.split("=")[0].strip()
    with pytest.raises(ConfigError) as raised:
        config.get(section.strip("["), name)
    assert message in str(raised.value)


def test_unparsable_file_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot be parsed"):
        Config(write(tmp_path, "this is not ini\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        Config(tmp_path / "absent.conf")


def test_fragments_override_the_main_file_in_name_order(tmp_path):
    main = write(tmp_path, "[identity]\nbind_port = 1000\nworkers = 3\n")
    fragments = tmp_path / "stratus.conf.d"
    fragments.mkdir()
    (fragments / "10-a.conf").write_text("[identity]\nbind_port = 2000\n")
    (fragments / "20-b.conf").write_text("[identity]\nbind_port = 3000\n")
    config = Config(main)
    assert config.get("identity", "bind_port") == 3000
    assert config.get("identity", "workers") == 3


def test_overrides_win(tmp_path):
    config = Config(
        write(tmp_path, "[identity]\nbind_port = 1000\n"),
        overrides={"identity": {"bind_port": 4242}},
    )
    assert config.get("identity", "bind_port") == 4242


def test_unknown_option(tmp_path):
    with pytest.raises(ConfigError, match="unknown option"):
        Config(write(tmp_path, "")).get("identity", "no_such_option")
