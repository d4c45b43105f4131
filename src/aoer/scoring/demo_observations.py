"""Demo answer-engine observations: six engines, a dozen local prompts and a handful of local
competitors per city, so the engines table, share of voice and cited pages show at once.

Each demo day's answers follow that day's demo signals: of its N answers, round(aeo * N / 100)
name the dealership and round(geo * N / 100) cite its pages, spread over the engines by how
well each engine knows the dealership. The derived aeo/geo (DESIGN §14) therefore stay within
half an answer of the signals they replace, and the demo's scores, trends and risk levels hold.
Deterministic: the same dealer and day always get the same answers.
"""

import random
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

from aoer.constants import SCORE_WINDOW_DAYS
from aoer.scoring.observations import KNOWN_ENGINES, ObservationRow, ingest_observations
from aoer.store import Session
from aoer.store.signals import SignalLevel

# How often each engine names a dealership, relative to the others (a dealer's own mix varies).
ENGINE_BIAS = {
    "chatgpt": 1.15,
    "perplexity": 1.0,
    "gemini": 0.9,
    "ai_overviews": 1.3,
    "copilot": 0.7,
    "claude": 0.85,
}
PROMPTS = (
    "best {make} dealer in {city}",
    "{make} dealership near me in {city}",
    "where to buy a used car in {city}",
    "{make} service center {city}",
    "certified pre-owned {make} {city}",
    "car dealerships with good reviews in {city}",
    "{make} lease deals {city}",
    "where to trade in my car in {city}",
    "family SUV dealer {city}",
    "car dealer financing with bad credit {city}",
)
PAGES = ("inventory/used", "new/{make}", "service", "specials", "financing", "about/reviews")
COMPETITORS = {
    "Portland": ("Rose City Toyota", "Columbia Motors", "Willamette Auto Mall", "Cascade Ford"),
    "Denver": ("Mile High Chevrolet", "Front Range Toyota", "Larimer Auto Group", "Peak Honda"),
    "San Diego": ("Pacific Coast Honda", "Mission Valley Ford", "Coronado Motors", "Balboa Kia"),
    "Chicago": ("Windy City Ford", "Lincoln Park Toyota", "Loop Auto Mall", "Navy Pier Nissan"),
    "Austin": ("Hill Country Toyota", "Capital City Ford", "Congress Ave Motors", "Zilker Honda"),
    "Manchester": ("Merrimack Toyota", "Queen City Ford", "Granite Auto Mall", "Amoskeag Honda"),
    "Phoenix": ("Valley of the Sun Ford", "Camelback Toyota", "Sonoran Motors", "Mesa Honda"),
    "Baltimore": ("Inner Harbor Toyota", "Chesapeake Ford", "Fells Point Motors", "Camden Kia"),
    "Lexington": ("Kentucky Ford", "Thoroughbred Toyota", "Keeneland Motors", "Fayette Honda"),
    "Seattle": ("Puget Sound Toyota", "Emerald City Ford", "Rainier Motors", "Ballard Honda"),
    "Atlanta": ("Buckhead Toyota", "Peach State Ford", "Midtown Motors", "Decatur Honda"),
    "St. Louis": ("Arch City Ford", "Gateway Toyota", "Soulard Motors", "Clayton Honda"),
}
T = TypeVar("T")
OTHER_COMPETITORS = ("Metro Auto Mall", "Downtown Motors", "Northside Toyota", "Eastside Ford")


def demo_domain(name: str) -> str:
    """The demo dealership's domain, as the demo's SQL makes it."""
    return "".join(ch for ch in name.lower() if "a" <= ch <= "z") + ".example"


def demo_observations(
    dealer: UUID, name: str, city: str, levels: Sequence[SignalLevel]
) -> Iterator[ObservationRow]:
    """One dealer's answers for each day of `levels` (its signals)."""
    make = name.split()[-1]
    prompts = [p.format(make=make, city=city) for p in PROMPTS]
    rivals = COMPETITORS.get(city, OTHER_COMPETITORS)
    pages = [f"https://{demo_domain(name)}/{p.format(make=make.lower())}" for p in PAGES]
    mix = random.Random(f"{dealer}:mix")
    bias = {e: ENGINE_BIAS[e] * mix.uniform(0.6, 1.4) for e in KNOWN_ENGINES}
    popularity = [mix.uniform(0.5, 2.0) for _ in rivals]
    for level in levels:
        yield from _day(dealer, level, prompts, rivals, popularity, pages, bias)


def _day(
    dealer: UUID,
    level: SignalLevel,
    prompts: Sequence[str],
    rivals: Sequence[str],
    popularity: Sequence[float],
    pages: Sequence[str],
    bias: dict[str, float],
) -> Iterator[ObservationRow]:
    rng = random.Random(f"{dealer}:{level.date.isoformat()}")
    answers = [(engine, prompt) for engine in KNOWN_ENGINES for prompt in prompts]
    n = len(answers)
    named = _weighted_sample(rng, answers, [bias[e] for e, _ in answers], _share(level.aeo, n))
    cite_weights = [3.0 if a in named else 1.0 for a in answers]
    cited = _weighted_sample(rng, answers, cite_weights, _share(level.geo or Decimal(0), n))
    for engine, prompt in answers:
        mentioned = (engine, prompt) in named
        is_cited = (engine, prompt) in cited
        others = _weighted_sample(rng, rivals, popularity, rng.randint(1, 3))
        yield ObservationRow(
            dealer_id=dealer,
            date=level.date,
            engine=engine,
            prompt=prompt,
            mentioned=mentioned,
            position=rng.choices((1, 2, 3, 4), (4, 3, 2, 1))[0] if mentioned else None,
            cited=is_cited,
            cited_urls=rng.sample(list(pages), rng.randint(1, 2)) if is_cited else [],
            competitors=sorted(others),
            sentiment=(
                Decimal(rng.randint(10, 90)) / 100
                if mentioned
                else (Decimal(rng.randint(-30, 20)) / 100 if rng.random() < 0.3 else None)
            ),
        )


def _share(percent: Decimal, n: int) -> int:
    return min(n, max(0, round(percent * n / 100)))


def _weighted_sample(
    rng: random.Random, items: Sequence[T], weights: Sequence[float], k: int
) -> set[T]:
    """k distinct items, each drawn with probability proportional to its weight
    (Efraimidis and Spirakis: the k largest of random() ** (1 / weight))."""
    keys = [rng.random() ** (1 / w) for w in weights]
    order = sorted(range(len(items)), key=lambda i: -keys[i])
    return {items[i] for i in order[:k]}


async def load_demo_observations(session: Session, dealers: Sequence[tuple[UUID, str, str]]) -> int:
    """Observations for the demo dealers' last 30 days, their aeo/geo derived from them
    (idempotent: dealers that have observations are left alone); the rows written."""
    ids = [d for d, _, _ in dealers]
    fresh = [d for d in dealers if d[0] not in await session.observations.observed(ids)]
    if not fresh:
        return 0
    fresh_ids = [d for d, _, _ in fresh]
    days = SCORE_WINDOW_DAYS + 1
    levels: dict[UUID, list[SignalLevel]] = {d: [] for d in fresh_ids}
    for level in await session.signals.recent_levels(fresh_ids, days):
        levels[level.dealer_id].append(level)
    rows = (
        row
        for dealer, name, city in fresh
        for row in demo_observations(dealer, name, city, levels[dealer])
    )
    async with session.transaction():
        await session.signals.mark_derived(fresh_ids, days)
        staged = (row.staged(number) for number, row in enumerate(rows, start=1))
        result = await ingest_observations(session, staged, derive=True)
    return result.upserted
