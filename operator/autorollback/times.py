"""RFC 3339 times as the API server and autorollback write them; compared parsed, never as text."""
import datetime as dt

NEVER = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def parse(text: str | None) -> dt.datetime:
    """A time; missing or unreadable ones count as never."""
    try:
        t = dt.datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
    except ValueError:
        return NEVER
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
