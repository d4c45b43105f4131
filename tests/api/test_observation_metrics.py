"""GET /api/aoer/engines (DESIGN §14): every metric against an independent Decimal/Fraction
oracle (tests/api/observation_oracle.py), on a real PostgreSQL."""

import asyncio
import random
from datetime import timedelta
from typing import Any
from uuid import UUID

from tests.api.conftest import Api
from tests.api.observation_oracle import engines_report
from tests.conftest import MakeTenant, utc_today

ENGINES = ("chatgpt", "perplexity", "gemini", "ai_overviews", "copilot", "claude")


def obs(dealer: UUID, days_back: int, engine: str, prompt: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "dealerId": str(dealer),
        "date": (utc_today() - timedelta(days_back)).isoformat(),
        "engine": engine,
        "prompt": prompt,
        "mentioned": False,
        "cited": False,
    }
    return row | values


async def post(api: Api, rows: list[dict[str, Any]], **body: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/api/observations", json={"observations": rows, **body}, headers=api.admin
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def engines(api: Api, tenant: UUID) -> dict[str, Any]:
    response = await api.client.get(f"/api/aoer/engines?tenantId={tenant}", headers=api.admin)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_worked_case_every_metric_with_ties_repeats_and_a_resent_prompt(
    api: Api, make_tenant: MakeTenant
) -> None:
    t, other = await make_tenant("Lakeside Ford"), await make_tenant("Other")
    url_a, url_b = "https://lakeside.example/used", "https://lakeside.example/service"
    sent = [
        # chatgpt: 3 answers, 2 mentioned (positions 1, 2 → 1.5), 1 cited.
        obs(t, 0, "chatgpt", "best ford dealer", mentioned=True, position=1, cited=True,
            citedUrls=[url_a, url_a], competitors=["Hill Motors", "Hill Motors", "Bay Auto"],
            sentiment="0.01"),
        obs(t, 1, "chatgpt", "best ford dealer", mentioned=True, position=2,
            competitors=["Bay Auto"], sentiment="0.02"),
        obs(t, 30, "chatgpt", "oil change near me", competitors=["Hill Motors"]),
        # Outside the window: never counted.
        obs(t, 31, "chatgpt", "best ford dealer", mentioned=True, position=9, cited=True,
            citedUrls=[url_b], competitors=["Zed Cars"]),
        # gemini: answers, none mentioned, no competitors → shareOfVoice 0/0 = null.
        obs(t, 2, "gemini", "best ford dealer"),
        obs(t, 3, "gemini", "best ford dealer", cited=True, citedUrls=[url_b]),
        # perplexity: sentiment -0.015 → -0.02 (half away from zero), a competitor tie.
        obs(t, 4, "perplexity", "trucks for sale", mentioned=True, sentiment="-0.01",
            competitors=["Able Autos"]),
        obs(t, 4, "perplexity", "vans for sale", mentioned=True, sentiment="-0.02",
            competitors=["Able Autos", "Cove Cars"]),
        # Another tenant's rows never show.
        obs(other, 0, "chatgpt", "best ford dealer", mentioned=True, competitors=["Hill Motors"]),
    ]  # fmt: skip
    await post(api, sent)
    # Re-sent the same day: the second answer replaces the first (now not mentioned).
    resent = obs(t, 4, "perplexity", "vans for sale", sentiment="0.50", competitors=["Cove Cars"])
    await post(api, [resent])
    sent.append(resent)
    found = await engines(api, t)
    assert found == engines_report(str(t), sent, utc_today())
    # The hand-worked numbers the oracle must also give.
    chatgpt = next(e for e in found["engines"] if e["engine"] == "chatgpt")
    assert chatgpt == {
        "engine": "chatgpt",
        "answers": 3,
        "visibility": 0.6667,
        "citationRate": 0.3333,
        "avgPosition": 1.5,
        "shareOfVoice": 0.3333,  # 2 own / (2 own + {Hill, Bay} + {Bay} + {Hill})
        "sentiment": 0.02,  # (0.01 + 0.02) / 2 = 0.015 → 0.02
    }
    gemini = next(e for e in found["engines"] if e["engine"] == "gemini")
    assert (gemini["visibility"], gemini["shareOfVoice"], gemini["avgPosition"]) == (0, None, None)
    assert [e["engine"] for e in found["engines"]] == ["chatgpt", "gemini", "perplexity"]
    # Own mentions 3 (the re-sent answer no longer mentions); competitor mentions 6. Hill
    # Motors, named twice in one answer, counts once there; ties are ordered by name.
    assert found["competitors"] == [
        {"name": "Bay Auto", "mentions": 2, "shareOfVoice": 0.2222},
        {"name": "Hill Motors", "mentions": 2, "shareOfVoice": 0.2222},
        {"name": "Able Autos", "mentions": 1, "shareOfVoice": 0.1111},
        {"name": "Cove Cars", "mentions": 1, "shareOfVoice": 0.1111},
    ]
    assert found["overall"]["shareOfVoice"] == 0.3333
    # url_a cited twice in one answer counts once; ties by URL.
    assert found["topCitedUrls"] == [{"url": url_b, "count": 1}, {"url": url_a, "count": 1}]
    assert "Zed Cars" not in {c["name"] for c in found["competitors"]}


async def test_half_way_values_round_away_from_zero(api: Api, make_tenant: MakeTenant) -> None:
    t = await make_tenant()
    # 1 of 32 answers mentioned: 0.03125 → 0.0313; positions 1,1,1,2,2,2,2,2 → 1.625 → 1.63.
    rows = [obs(t, 0, "claude", f"p{i}") for i in range(32)]
    rows[0] |= {"mentioned": True, "position": 1}
    copilot = [
        obs(t, 0, "copilot", f"q{i}", mentioned=True, position=1 if i < 3 else 2) for i in range(8)
    ]
    await post(api, rows + copilot)
    found = await engines(api, t)
    by_engine = {e["engine"]: e for e in found["engines"]}
    assert by_engine["claude"]["visibility"] == 0.0313
    assert by_engine["copilot"]["avgPosition"] == 1.63
    assert found == engines_report(str(t), rows + copilot, utc_today())


async def test_a_tenant_without_observations_gets_zero_answers_and_nulls(
    api: Api, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()
    today = utc_today()
    assert await engines(api, t) == {
        "tenantId": str(t),
        "window": {"from": (today - timedelta(30)).isoformat(), "to": today.isoformat()},
        "overall": {
            "answers": 0,
            "visibility": None,
            "citationRate": None,
            "avgPosition": None,
            "shareOfVoice": None,
            "sentiment": None,
        },
        "engines": [],
        "competitors": [],
        "topCitedUrls": [],
    }


async def test_random_fleets_match_the_oracle_including_the_top_ten_cuts(
    api: Api, make_tenant: MakeTenant
) -> None:
    rng = random.Random(15)
    tenants = [await make_tenant(f"T{i}") for i in range(3)]
    rivals = [f"Rival {c}" for c in "ABCDEFGHIJKLMNOP"]
    pages = [f"https://dealer.example/p{i}" for i in range(14)]
    sent = []
    for t in tenants:
        for day in range(0, 35, 2):
            for engine in rng.sample(ENGINES, 4):
                for prompt in ("best dealer", "cheap suv", "ev service"):
                    mentioned, cited = rng.random() < 0.5, rng.random() < 0.3
                    sent.append(
                        obs(
                            t, day, engine, prompt,
                            mentioned=mentioned,
                            position=rng.choice([None, 1, 2, 3, 7]) if mentioned else None,
                            cited=cited,
                            citedUrls=rng.sample(pages, rng.randint(0, 3)) if cited else [],
                            competitors=rng.choices(rivals, k=rng.randint(0, 4)),
                            sentiment=rng.choice([None, "-1", "-0.35", "0", "0.25", "1"]),
                        )
                    )  # fmt: skip
    # In batches, then a fifth of the answers re-sent with other values: the daily rollups
    # the endpoint reads are rebuilt for every day a batch touches.
    for start in range(0, len(sent), 400):
        await post(api, sent[start : start + 400])
    resent = [
        row | {"mentioned": False, "position": None, "cited": False, "citedUrls": [],
               "competitors": rng.choices(rivals, k=rng.randint(0, 2))}
        for row in rng.sample(sent, len(sent) // 5)
    ]  # fmt: skip
    await post(api, resent)
    sent += resent
    for t in tenants:
        assert await engines(api, t) == engines_report(str(t), sent, utc_today())


async def test_concurrent_ingests_of_one_tenant_and_day_both_count(
    api: Api, make_tenant: MakeTenant
) -> None:
    t = await make_tenant()
    batches = [
        [obs(t, 0, engine, f"{engine} {i}", mentioned=i % 2 == 0, competitors=[f"R{i % 3}"])
         for i in range(300)]
        for engine in ("chatgpt", "gemini", "claude", "copilot")
    ]  # fmt: skip
    await asyncio.gather(*(post(api, batch) for batch in batches))
    sent = [row for batch in batches for row in batch]
    assert await engines(api, t) == engines_report(str(t), sent, utc_today())


async def test_a_competitor_spelled_in_two_cases_is_one_entry_of_the_leaderboard(
    api: Api, make_tenant: MakeTenant
) -> None:
    """Two feeds writing "CarMax" and "carmax" made two entries, each with half the voice."""
    t = await make_tenant()
    await post(
        api,
        [
            obs(t, 1, "chatgpt", "used cars", mentioned=True, competitors=["CarMax"]),
            obs(t, 1, "gemini", "used cars", competitors=["CarMax", "Bay Auto"]),
            obs(t, 2, "chatgpt", "used cars", competitors=["carmax"]),
            # One answer naming it in both spellings names it once.
            obs(t, 3, "chatgpt", "used cars", competitors=["CarMax", "CARMAX"]),
        ],
    )
    report = await engines(api, t)
    # 1 own mention + 5 competitor mentions: CarMax 4 of 6, Bay Auto 1 of 6.
    assert report["competitors"] == [
        {"name": "CarMax", "mentions": 4, "shareOfVoice": 0.6667},
        {"name": "Bay Auto", "mentions": 1, "shareOfVoice": 0.1667},
    ]
    assert report["overall"]["shareOfVoice"] == 0.1667  # 1 of 6
