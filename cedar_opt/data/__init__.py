"""Real inputs: request traces (:mod:`.traces`), rate shapes (:mod:`.rates`), carbon signals
(:mod:`.carbon`, :class:`.signalset.SignalSet`) and the marginal estimator (:mod:`.marginal`).
The bundled pack lives in ``data/`` at the repository top (see ``docs/data.md``)."""
