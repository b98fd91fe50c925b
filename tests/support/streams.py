"""Reading a run's event stream in process (peftlab/api/events.py), as a browser's EventSource
would receive it."""

import json

from peftlab.api import events


async def progress_events(run_id: int, count: int) -> list[dict]:
    """The data of the first `count` "progress" events of the run's stream (fewer if it ends)."""
    seen = []
    async for chunk in events._stream(run_id, 0):
        for block in chunk.strip().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if lines.get("event") == "progress":
                seen.append(json.loads(lines["data"]))
        if len(seen) >= count:
            return seen
    return seen
