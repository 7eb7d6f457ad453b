# %% [markdown]
# # cedar_opt quick-start
#
# A notebook in percent format (open it with Jupyter + jupytext, VS Code or Spyder, or run it as a
# script: `python notebooks/quickstart.py`). It replays the smoke scenario with CEDAR and the
# performance-only baseline, compares them, and sweeps the carbon weight — all in memory.
# `CEDAR_QUICKSTART_SECONDS` shortens the replay (the test suite runs it at 60 s).

# %%
import os

import cedar_opt
from cedar_opt.paths import scenarios_dir

seconds = os.environ.get("CEDAR_QUICKSTART_SECONDS", "300")
scenario = cedar_opt.load_scenario(scenarios_dir() / "smoke.yaml", [f"duration_s={seconds}"])
print(scenario.name, scenario.duration_s, "s,", len(scenario.fleet.regions), "regions")

# %% [markdown]
# ## Two policies side by side

# %%
import pandas as pd

pd.set_option("display.width", 140)

results = cedar_opt.compare(scenario, ["cedar", "performance_only"])
summary = pd.DataFrame([r.summary for r in results]).set_index("policy")
print(summary[["requests", "ttft_p95_s", "slo_violation_pct", "cost_usd", "carbon_marginal_kg"]])

# %% [markdown]
# ## Per-step series are xarray: where did CEDAR put its replicas?

# %%
steps = results[0].steps
replicas = (steps.replicas_ready + steps.replicas_starting).sum("step") * scenario.step_s / 3600.0
print("replica-hours by pool:\n", replicas.to_series().loc[lambda s: s > 0].round(2))

# %% [markdown]
# ## The carbon weight: a small sweep in memory

# %%
rows = []
for w in (0.0, 1.0, 3.0):
    s = cedar_opt.load_scenario(scenarios_dir() / "smoke.yaml", [f"duration_s={seconds}", f"controller.weights.carbon={w}"])
    r = cedar_opt.run(s, "cedar")
    rows.append({"carbon_weight": w, **{k: r.summary[k] for k in ("cost_usd", "carbon_marginal_kg", "slo_violation_pct")}})
print(pd.DataFrame(rows))
