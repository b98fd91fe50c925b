"""The embedded broker (peftlab/broker.py): a worker never takes a message that is half written.

Each test replays the race: the worker lists the queue folder at the moment the web server has
created a message's file but not yet written it."""

import json
from queue import Empty

import kombu
import pytest
from kombu.transport import filesystem

from peftlab import broker


def channel_of(transport, folder):
    folder.mkdir(exist_ok=True)
    connection = kombu.Connection(
        transport=transport, transport_options={"data_folder_in": str(folder), "data_folder_out": str(folder)}
    )
    return connection.default_channel


def put_while_reading(tmp_path, monkeypatch, transport, module):
    """Put one message on a queue through `transport`, with a second channel (the worker) taking
    what it finds in the queue while the message's file is open: `module`'s serializer runs then.
    Returns what the worker saw then, and the worker's channel."""
    writer = channel_of(transport, tmp_path / "q")
    reader = channel_of(transport, tmp_path / "q")
    seen = []
    serialize = module.dumps

    def dumps(payload):
        try:
            seen.append(reader._get("cpu"))
        except Empty:
            seen.append("nothing")
        except json.JSONDecodeError:
            seen.append("a message it could not read")
        return serialize(payload)

    monkeypatch.setattr(module, "dumps", dumps)
    writer._put("cpu", {"run": 1})
    return seen, reader


def test_kombus_own_channel_loses_a_message_read_while_it_is_written(tmp_path, monkeypatch):
    # What peftlab/broker.py is for: the stock channel hands out the empty file, and the message
    # is gone from the queue.
    seen, reader = put_while_reading(tmp_path, monkeypatch, filesystem.Transport, filesystem)
    assert seen == ["a message it could not read"]
    with pytest.raises(Empty):
        reader._get("cpu")


def test_the_lab_channel_shows_a_message_only_when_it_is_whole(tmp_path, monkeypatch):
    seen, reader = put_while_reading(tmp_path, monkeypatch, broker.Transport, broker)
    assert seen == ["nothing"]
    assert reader._get("cpu") == {"run": 1}
    assert not list((tmp_path / "q").iterdir())  # no partial file is left behind


def test_the_embedded_mode_uses_the_lab_channel(settings):
    from peftlab.celery_app import app

    assert settings.CELERY_BROKER_URL.startswith("filesystem://")
    with app.connection_for_write() as connection:
        assert isinstance(connection.default_channel, broker.Channel)
