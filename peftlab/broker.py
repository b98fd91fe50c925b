"""The embedded mode's broker: kombu's filesystem transport, with messages that appear whole.

kombu's filesystem channel creates a message's file under its final name and then writes it. A
worker listing the folder in between takes the empty file, fails to decode it, and the run's
message is lost (seen as a JSONDecodeError that stopped `manage.py lab all`). Here a message is
written under a name the worker does not read (`.part`) and renamed into place: a rename within a
folder is atomic, so the worker sees either no file or the whole message.
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

PARTIAL = ".part"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        try:
            with open(final + PARTIAL, "wb") as part:
                part.write(dumps(payload).encode())
            os.replace(final + PARTIAL, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
