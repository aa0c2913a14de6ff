from autorollback import retry


def test_backoff_doubles_and_is_capped() -> None:
    waits = [retry.delay(n, jitter=1.0) for n in range(12)]
    assert waits[:4] == [0.5, 1.0, 2.0, 4.0] and max(waits) == retry.CAP


def test_retry_after_is_honoured() -> None:
    assert retry.delay(0, retry_after=7, jitter=1.0) == 7
    assert retry.delay(8, retry_after=1, jitter=1.0) == retry.CAP  # never sooner than our own backoff


def test_which_statuses_are_worth_another_try() -> None:
    assert all(retry.retryable(s) for s in (0, 401, 403, 429, 500, 503, 504))
    assert not any(retry.retryable(s) for s in (400, 404, 409, 422))
