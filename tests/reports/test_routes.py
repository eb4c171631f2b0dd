"""The report routes on a real uvicorn server over the in-memory churn windows."""

from __future__ import annotations

import httpx
import pytest

from tests.reports.memory_source import MemorySource


@pytest.fixture(scope="module")
def client(reports_url: str):
    with httpx.Client(base_url=reports_url, timeout=120) as c:
        yield c


def test_index_html_and_json_twins(client: httpx.Client, source: MemorySource) -> None:
    page = client.get("/reports/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'href="/reports/churn"' in page.text
    for url in ("/reports/?format=json", "/reports.json"):
        data = client.get(url).json()
        churn = next(m for m in data["models"] if m["model"] == "churn")
        assert churn["latest"]["window_id"] == source.churn[-1].window_id and churn["latest"]["drifted"] is True
        assert churn["links"] == {"html": "/reports/churn", "json": "/reports/churn.json"}
        wine = next(m for m in data["models"] if m["model"] == "wine")
        assert wine["latest"] is None


def test_report_json_twin_names_the_ranked_drifted_features(client: httpx.Client, source: MemorySource) -> None:
    latest = client.get("/reports/churn.json").json()
    same = client.get("/reports/churn/2000?format=json").json()
    assert latest == same
    assert latest["drifted_features"][:3] == ["churn_probability", "monthly_charges", "tenure_months"]
    columns = latest["columns"]
    assert [c["name"] for c in columns if c["drifted"]] == latest["drifted_features"]
    drifted_effects = [c["effect"] for c in columns if c["drifted"]]
    assert drifted_effects == sorted(drifted_effects, reverse=True)
    assert [h["window_id"] for h in latest["history"]] == [400, 800, 1200, 1600, 2000]
    assert latest["links"]["earlier"] == ["/reports/churn/1600", "/reports/churn/1200", "/reports/churn/800", "/reports/churn/400"]
    early = client.get("/reports/churn/800.json").json()
    assert early["window"]["window_id"] == 800 and early["window"]["drifted"] is False
    assert [h["window_id"] for h in early["history"]] == [400, 800]


def test_unknown_model_or_window_is_a_clear_404(client: httpx.Client) -> None:
    r = client.get("/reports/nope")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "no model &#x27;nope&#x27; is configured" in r.text
    r = client.get("/reports/churn/999.json")
    assert r.status_code == 404 and r.json() == {"error": "not_found", "detail": "model 'churn' has no evaluated window 999 (it may be older than the store's retention)"}
    assert client.get("/reports/wine.json").json()["detail"] == "model 'wine' has no evaluated window yet"
    assert client.get("/reports/nope/400/evidently").status_code == 404


def test_malformed_window_or_format_is_a_400(client: httpx.Client) -> None:
    r = client.get("/reports/churn/abc.json")
    assert r.status_code == 400 and r.json()["error"] == "bad_request" and "non-negative integer" in r.json()["detail"]
    assert client.get("/reports/churn/-1").status_code == 400
    assert client.get("/reports/churn/" + "9" * 40).status_code == 400
    r = client.get("/reports/?format=" + "x" * 5000)
    assert r.status_code == 400 and len(r.text) < 500
    r = client.get("/reports/%3Cscript%3E")
    assert r.status_code == 404 and "<script>" not in r.text


def test_html_report_embeds_evidently_and_its_page_is_served(client: httpx.Client, source: MemorySource) -> None:
    page = client.get("/reports/churn")
    assert page.status_code == 200
    assert 'src="/reports/churn/2000/evidently"' in page.text
    assert 'src="/reports/churn/2000/agreement"' in page.text
    agreement = client.get("/reports/churn/2000/agreement")
    assert agreement.status_code == 200
    assert agreement.text.count("✓") == len(source.churn[-1].result["features"])  # every score agrees with Evidently's
    assert "<script" not in agreement.text
    ev = client.get("/reports/churn/2000/evidently")
    assert ev.status_code == 200 and ev.headers["content-type"].startswith("text/html")
    assert "Wasserstein distance (normed)" in ev.text  # Evidently ran our method on the numeric columns
    # Evidently's page carries traffic data in its scripts: its own opaque origin, no network.
    assert ev.headers["content-security-policy"].startswith("sandbox allow-scripts;")
    assert "default-src 'none'" in ev.headers["content-security-policy"]
    assert 'sandbox="allow-scripts" loading="lazy" src="/reports/churn/2000/evidently"' in page.text
    assert client.get("/reports/churn/2000").text == page.text  # cached: identical page
