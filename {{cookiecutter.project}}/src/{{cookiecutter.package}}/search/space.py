"""The search space: `hydra.sweeper.params` and sweep overrides (Hydra's grammar) as Optuna distributions."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from ..errors import ConfigurationError

GRAMMAR = (
    "choice(a,b,c), range(1,10), range(0,1,step=0.1), interval(1e-4,1e-1), tag(log,interval(1e-4,1e-1)), "
    "tag(int,interval(1,10)) or a fixed value"
)
INTERVAL_TAGS = {"log", "int"}
# The lines of Hydra's parse errors that say nothing about the value.
PARSER_NOISE = ("Error parsing override", "See https://hydra.cc")
SHUFFLED = "has shuffle(), which means nothing in a search (the sampler chooses the order); remove it"


@dataclass(frozen=True)
class SearchParameter:
    """One searched key: the distribution the study samples, and how a sample is written as an override."""

    key: str  # as written before the "=", with a leading + when the override adds the key
    name: str  # the config key: the parameter's name in the study
    distribution: BaseDistribution
    origin: str  # where the search space says so and how, for messages
    # A categorical sample (what the study stores) -> the override text of that choice.
    choices: Mapping[Any, str] = field(default_factory=dict)
    # A float range's samples are rounded to the decimals of its start and step (0.30000000000000004 -> 0.3).
    decimals: int | None = None

    def value(self, sample: Any) -> Any:
        """The value a job gets for the study's `sample`."""
        return round(sample, self.decimals) if self.decimals is not None else sample

    def override(self, sample: Any) -> str:
        text = self.choices[sample] if self.choices else Transformer.str(self.value(sample))
        return f"{self.key}={text}"


@dataclass(frozen=True)
class SearchSpace:
    """The parameters a search samples, and the overrides every trial gets as they are."""

    parameters: dict[str, SearchParameter]
    fixed: list[str]

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        return {name: parameter.distribution for name, parameter in self.parameters.items()}

    def values(self, samples: Mapping[str, Any]) -> dict[str, Any]:
        """The values jobs get for a trial's samples (a resumed study may hold keys no longer searched)."""
        return {
            name: self.parameters[name].value(sample) if name in self.parameters else sample
            for name, sample in samples.items()
        }

    def overrides(self, samples: Mapping[str, Any]) -> list[str]:
        """The overrides of the job that trains a trial."""
        return [*self.fixed, *(self.parameters[name].override(sample) for name, sample in samples.items())]


def decimal_places(number: float) -> int:
    return max(0, -int(Decimal(repr(number)).normalize().as_tuple().exponent))


def as_override_text(value: Any) -> str:
    """A `hydra.sweeper.params` value as it would be typed after the "=" (YAML may have parsed it)."""
    return value if isinstance(value, str) else Transformer.str(value)


def choice_distribution(override: Override) -> tuple[CategoricalDistribution, dict[Any, str]]:
    """choice(...), a,b,c or glob(...): each choice as the study stores it (plain values stay themselves,
    lists and dicts become their override text), mapped to its override text."""
    if isinstance(override.value(), ChoiceSweep) and override.value().shuffle:
        raise ValueError(SHUFFLED)
    choices = {Transformer.encode(choice): Transformer.str(choice) for choice in override.sweep_iterator()}
    if not choices:
        raise ValueError("matches no option of the group; list the options with choice(a,b)")
    return CategoricalDistribution(list(choices)), choices


def range_distribution(sweep: RangeSweep, values: list[Any]) -> tuple[BaseDistribution, int | None]:
    """range(start, stop, step=...), stop excluded as in Python: an Int or a stepped Float distribution."""
    if sweep.shuffle:
        raise ValueError(SHUFFLED)
    if not values:
        raise ValueError("holds no value: stop must lie beyond start in the direction of step")
    step = abs(sweep.step)
    if all(isinstance(number, int) for number in (sweep.start, sweep.stop, sweep.step)):
        return IntDistribution(min(values), max(values), step=step), None
    decimals = max(decimal_places(sweep.start), decimal_places(step))
    low, high = round(min(values), decimals), round(max(values), decimals)
    return FloatDistribution(low, high, step=step), decimals


def interval_distribution(sweep: IntervalSweep) -> BaseDistribution:
    """interval(low, high), optionally tag(log, ...) and/or tag(int, ...)."""
    unknown = sorted(set(sweep.tags) - INTERVAL_TAGS)
    if unknown:
        raise ValueError(f"has the unknown tag {', '.join(unknown)}; an interval takes log, int or both")
    low, high, log = sweep.start, sweep.end, "log" in sweep.tags
    if low >= high:
        if low == high:
            raise ValueError(f"is a single value; give it as a fixed value, {low:g}")
        raise ValueError(f"has its low end above its high end; write interval({high:g},{low:g})")
    if log and low <= 0:
        example = f"tag(log,interval({high / 1000:g},{high:g}))"
        raise ValueError(f"is a log interval, which needs a low end above 0, e.g. {example}")
    if "int" in sweep.tags:
        if not (float(low).is_integer() and float(high).is_integer()):
            example = f"tag(int,interval({low:.0f},{high:.0f}))"
            raise ValueError(f"has tag(int,...), which needs whole-number ends, e.g. {example}")
        return IntDistribution(int(low), int(high), log=log)
    return FloatDistribution(low, high, log=log)


def search_parameter(override: Override, source: str) -> SearchParameter:
    """The parameter of a sweep override found in `source`; ValueError says what is wrong with it."""
    sweep = override.value()
    tags = getattr(sweep, "tags", set())
    if tags and not override.is_interval_sweep():
        raise ValueError("has a tag, but tags apply to interval() only, e.g. tag(log,interval(1e-4,1e-2))")
    key, name, origin = override.get_key_element(), override.key_or_group, f"{source}: {override.input_line}"
    if override.is_choice_sweep():
        distribution, choices = choice_distribution(override)
        return SearchParameter(key, name, distribution, origin, choices=choices)
    if override.is_range_sweep():
        distribution, decimals = range_distribution(sweep, list(override.sweep_iterator()))
        return SearchParameter(key, name, distribution, origin, decimals=decimals)
    if override.is_interval_sweep():
        return SearchParameter(key, name, interval_distribution(sweep), origin)
    raise ValueError(f"is not a sweep this search can sample; use {GRAMMAR}")


def read_search_space(
    params: Mapping[str, Any] | None, arguments: Iterable[str], parser: OverridesParser
) -> SearchSpace:
    """Read `hydra.sweeper.params` (key: value) and the command line's overrides, Hydra's grammar both.

    Sweeps become parameters, everything else is passed to every trial as it is; a key on the command
    line replaces the same key in params (as the official Optuna sweeper does). Anything unsupported
    is refused with a ConfigurationError naming where it came from, the override and the fix.
    """
    lines = [
        (f"{key}={as_override_text(value)}", "hydra.sweeper.params") for key, value in (params or {}).items()
    ]
    lines += [(argument, "the command line") for argument in arguments]
    overrides: dict[str, tuple[Override, str]] = {}
    for line, source in lines:
        try:
            [override] = parser.parse_overrides([line])  # with the parser's config loader, for glob()
        except HydraException as error:
            lines_of_error = str(error).splitlines()
            problem = " ".join(line for line in lines_of_error if line and not line.startswith(PARSER_NOISE))
            raise ConfigurationError(
                f"Search space, {source}: cannot read {line!r} ({problem}); write {GRAMMAR}."
            ) from None
        overrides[override.key_or_group] = (override, source)

    parameters, fixed = {}, []
    for override, source in overrides.values():
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        try:
            parameters[override.key_or_group] = search_parameter(override, source)
        except ValueError as error:
            raise ConfigurationError(f"Search space, {source}: {override.input_line} {error}.") from None
    if not parameters:
        raise ConfigurationError(
            "The search space is empty: choose one with hparams_search=optuna, set hydra.sweeper.params, "
            "or sweep a key on the command line, e.g. 'optimizer.lr=tag(log,interval(1e-4,1e-2))'."
        )
    return SearchSpace(parameters, fixed)


def probe_overrides(space: SearchSpace) -> Iterator[tuple[SearchParameter, str, list[str]]]:
    """For each parameter and each of its choices (or its lowest value), the overrides of one job."""
    for parameter in space.parameters.values():
        distribution = parameter.distribution
        categorical = isinstance(distribution, CategoricalDistribution)
        samples = distribution.choices if categorical else [distribution.low]
        for sample in samples:
            probe = parameter.override(sample)
            yield parameter, probe, [*space.fixed, probe]


def check_space_composes(space: SearchSpace, compose: Callable[[list[str]], Any]) -> None:
    """Refuse a key the config does not have or a group option that does not exist before any trial
    starts: `compose(overrides)` composes a job's config, with each choice of each parameter."""
    for parameter, probe, overrides in probe_overrides(space):
        try:
            compose(overrides)
        except (HydraException, OmegaConfBaseException) as error:
            # Hydra's message goes on with the config search path, OmegaConf's with its object types.
            problem = " ".join(re.split(r"Config search path|full_key:", str(error))[0].split())
            raise ConfigurationError(
                f"Search space, {parameter.origin}: a trial with {probe} would fail ({problem}). Check the "
                "key and the value: python train.py --cfg job shows the config, --help the group options."
            ) from None
