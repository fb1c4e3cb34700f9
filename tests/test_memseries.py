from plt.memseries import Sample, SampleSeries, decimate


def readings(rss: list[float]) -> list[Sample]:
    return [Sample(float(t), r, 1, None) for t, r in enumerate(rss)]


def test_decimate_keeps_the_higher_of_each_pair():
    assert [x.rss_mb for x in decimate(readings([1, 5, 3, 2, 9]))] == [5, 3, 9]


def test_every_reading_is_kept_until_the_series_is_full():
    series = SampleSeries(10)
    for s in readings([3, 1, 2]):
        series.add(s)
    assert series.samples == readings([3, 1, 2])
    assert series.stride == 1


def test_series_stays_bounded_and_keeps_the_peak():
    series = SampleSeries(10)
    for i in range(1000):
        series.add(Sample(2.0 * (i + 1), 900 if i == 517 else 100 + i % 7, 1, None))
        assert len(series.samples) < 10
    times = [s.t for s in series.samples]
    assert times == sorted(times)
    assert max(s.rss_mb for s in series.samples) == 900
    assert series.stride > 1  # sampling slowed down instead of growing the list
    series.add(Sample(2002.0, 100, 1, None), force=True)
    assert len(series.samples) <= 10
    assert series.samples[-1].t == 2002


def test_the_closing_reading_keeps_the_peak_before_it():
    series = SampleSeries(6)
    for s in readings([1, 2, 3, 4, 5, 6]):  # full at 6: halved, one kept per 2 readings
        series.add(s)
    assert [s.rss_mb for s in series.samples] == [2, 4, 6] and series.stride == 2
    series.add(Sample(6.0, 9, 1, None))  # waits for the next reading
    series.add(Sample(7.0, 2, 1, None), force=True)
    assert [s.rss_mb for s in series.samples] == [2, 4, 6, 9, 2]


def test_at_least_two_samples():
    series = SampleSeries(0)
    for s in readings([5, 1, 7]):
        series.add(s)
    assert series.max_samples == 2 and len(series.samples) < 2


def test_columns_follow_the_sample_fields():
    series = SampleSeries(10)
    series.add(Sample(0.5, 120.0, 8, 950.0))
    series.add(Sample(2.5, 130.0, 4, None))
    assert series.columns() == {
        "t": [0.5, 2.5],
        "rss_mb": [120.0, 130.0],
        "concurrency": [8, 4],
        "budget_mb": [950.0, None],
    }
