from evaluation.variants import events


def _row(label, published_at):
    return {"label": label, "published_at": published_at, "text": "t"}


def test_a_story_quiet_for_more_than_fourteen_days_becomes_two_events():
    rows = [_row("s", "2024-05-01T10:00:00Z"), _row("s", "2024-05-15T09:00:00Z"), _row("s", "2024-05-29T10:00:01Z")]
    assert [r["label"] for r in events(rows)] == ["s/0", "s/0", "s/1"]


def test_events_are_cut_in_published_order_whatever_the_file_order():
    rows = [_row("s", "2024-07-01T00:00:00"), _row("s", "2024-05-01T00:00:00"), _row("s", "2024-05-03T00:00:00+00:00")]
    assert [r["label"] for r in events(rows)] == ["s/1", "s/0", "s/0"]


def test_undated_articles_stay_in_their_story_first_event_and_labels_never_mix():
    rows = [_row("a", None), _row("a", "2024-01-01T00:00:00Z"), _row("a", "2024-03-01T00:00:00Z"), _row("b", None)]
    assert [r["label"] for r in events(rows)] == ["a/0", "a/0", "a/1", "b/0"]


def test_a_quiet_gap_of_other_length_is_honoured():
    rows = [_row("s", "2024-01-01T00:00:00Z"), _row("s", "2024-01-04T00:00:00Z")]
    assert [r["label"] for r in events(rows, quiet_days=2)] == ["s/0", "s/1"]


def test_a_window_shorter_than_the_quiet_gap_leaves_time_nothing_to_cut_events_by():
    from evaluation.ceiling import ceiling

    rows = [_row("s", d) for d in ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-06-01T00:00:00Z")]
    assert ceiling(rows).f1 == 1.0
    squeezed = ceiling(rows, compress_days=10)
    assert squeezed.recall == 1.0 and squeezed.precision < 1.0
