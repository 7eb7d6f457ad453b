"""Forecasts the controller plans with: marginal carbon per region and arrivals per tier and origin.

Every forecaster answers for a list of horizon blocks given as absolute run times: ``starts_s``
(block starts, seconds since the run began) and ``lengths_s``; the answer is the block *mean*.

Kinds (same names for carbon and arrivals):

* ``persistence``: the latest value held flat over the horizon.
* ``seasonal``: seasonal naive — the value at the same time one week earlier when a week of
  history exists, else one day earlier when a day exists, else persistence.
* ``oracle``: perfect foresight (carbon: the run's own :class:`SignalSet`; arrivals: the
  ``truth`` callable, else persistence).
* ``noisy_oracle``: the oracle times a mean-one lognormal error ``exp(σz − σ²/2)``, drawn
  independently per (block, series) from a generator seeded by ``(seed, t_s)`` so a forecast
  made at the same time is the same however often it is asked for.
"""

from cedar_opt.forecast._common import KINDS
from cedar_opt.forecast.arrivals import ArrivalForecaster, make_arrival_forecaster
from cedar_opt.forecast.carbon import CarbonForecaster, make_carbon_forecaster

__all__ = ["KINDS", "ArrivalForecaster", "CarbonForecaster", "make_arrival_forecaster", "make_carbon_forecaster"]
