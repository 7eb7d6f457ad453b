"""Sweeps on Dask: a LocalCluster, and a real `dask scheduler` + `dask worker` started here as
separate processes on loopback (random free ports, bounded waits, always torn down)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import test_sweep_fns as fns
from cedar_opt.cli import main
from cedar_opt.experiments import sweep as sw
from cedar_opt.paths import scenarios_dir

pytest.importorskip("distributed")

SMOKE = scenarios_dir() / "smoke.yaml"
TESTS = Path(__file__).resolve().parent
DASK = Path(sys.executable).with_name("dask")
if not DASK.exists():
    pytest.skip("the `dask` command is not installed beside this Python", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"no scheduler on port {port} after {timeout_s} s")


class LoopbackCluster:
    """`dask scheduler` and N `dask worker --no-nanny --nthreads 1` processes on 127.0.0.1."""

    def __init__(self, tmp: Path, n_workers: int = 2, env: dict | None = None):
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]), **(env or {})}
        self.logs = tmp
        self.scheduler = self._spawn("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"])
        _wait_port(self.port, self.scheduler)
        self.workers = [self._start_worker(i) for i in range(n_workers)]
        self._wait_workers(n_workers)

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True, cwd=self.logs)

    def _start_worker(self, i: int) -> subprocess.Popen:
        return self._spawn(
            f"worker{i}",
            [str(DASK), "worker", self.address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60"],
        )

    def _wait_workers(self, n: int, timeout_s: float = 60.0) -> None:
        from distributed import Client

        with Client(self.address, timeout="20s") as c:
            c.wait_for_workers(n, timeout=timeout_s)

    def kill_worker(self, i: int) -> None:
        os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait(timeout=10)

    def close(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LoopbackCluster(tmp_path_factory.mktemp("dask"))
    try:
        yield c
    finally:
        c.close()


from test_sweep_fns import small_spec as spec  # noqa: E402  (shared with test_sweep.py)


def test_cli_sweep_on_an_external_scheduler_equals_serial(cluster, tmp_path, capsys):
    args = [
        "sweep", str(SMOKE), "--set", "duration_s=60", "--grid", "controller.weights.carbon=0,1,2",
        "--zip", "workload.sessions_per_s=0.1,0.2", "--policies", "cedar,round_robin", "--seeds", "2",
        "--point-fn", "test_sweep_fns:synthetic", "--no-progress",
    ]  # fmt: skip
    assert main([*args, "--executor", cluster.address, "--out", str(tmp_path / "d")]) == 0
    assert "24 ok, 0 failed" in capsys.readouterr().out
    assert main([*args, "--executor", "serial", "--out", str(tmp_path / "s")]) == 0
    d, s = sw.load_sweep(tmp_path / "d"), sw.load_sweep(tmp_path / "s")
    assert sw.equal_results(d, s)
    pids = {w.split(":")[1] for w in d["worker"].values.ravel()}
    assert str(os.getpid()) not in pids  # the points ran in the worker processes


def test_dask_local_cluster_equals_serial(tmp_path):
    plan = sw.plan_sweep(spec(), check_policies=False)
    a = sw.run_sweep(plan, tmp_path / "dask", executor="dask", workers=2, point_fn=fns.synthetic)
    b = sw.run_sweep(plan, tmp_path / "serial", executor="serial", point_fn=fns.synthetic)
    assert a.executor.startswith("dask at LocalCluster (2 workers")
    assert (a.ok, a.failed) == (24, 0) and sw.equal_results(a.dataset, b.dataset)


def test_unreachable_scheduler_is_an_input_error():
    from cedar_opt.errors import CedarInputError
    from cedar_opt.experiments.executors import DaskExecutor

    addr = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(CedarInputError, match="cannot reach a Dask scheduler"):
        with DaskExecutor(addr, connect_timeout_s=1):
            pass


def _key(rec: dict) -> tuple[int, float, float]:
    return (rec["seed"], float(rec["coords"]["controller.weights.carbon"]), float(rec["coords"]["workload.sessions_per_s"]))


def test_killing_a_worker_mid_sweep_still_completes_with_serial_results(tmp_path):
    log = tmp_path / "starts.log"
    c = LoopbackCluster(tmp_path, n_workers=2, env={"CEDAR_TEST_LOG": str(log), "CEDAR_TEST_SLEEP": "0.4"})
    try:
        plan = sw.plan_sweep(spec(policies=("cedar",)), check_policies=False)  # 12 points × 0.4 s on 2 workers
        victim = c.workers[0].pid
        finished: list[dict] = []
        box: dict = {}

        def go():
            try:
                box["res"] = sw.run_sweep(plan, tmp_path / "out", executor=c.address, point_fn=fns.slow, on_record=finished.append)
            except BaseException as e:  # surfaced below
                box["err"] = e

        t = threading.Thread(target=go, daemon=True)
        t.start()
        deadline = time.monotonic() + 60
        killed_while_running = None
        while time.monotonic() < deadline and killed_while_running is None:
            starts = [ln.split() for ln in log.read_text().splitlines()] if log.exists() else []
            done = {_key(r) for r in list(finished)}
            on_victim = [(int(s[1]), float(s[2]), float(s[3])) for s in starts if len(s) == 6 and int(s[5]) == victim]
            running = [k for k in on_victim if k not in done]
            if len(finished) >= 2 and running:
                c.kill_worker(0)
                killed_while_running = running[-1]
            time.sleep(0.02)
        assert killed_while_running is not None, "the victim worker never ran a point"
        t.join(timeout=120)
        assert not t.is_alive() and "err" not in box, box.get("err")
        res = box["res"]
        assert (res.ok, res.failed) == (12, 0)
        # the point that was running on the killed worker was re-run, and finished elsewhere
        retried = [r for r in finished if _key(r) == killed_while_running]
        assert retried and all(int(r["worker"].split(":")[1]) != victim for r in retried)
        serial = sw.run_sweep(plan, tmp_path / "serial", executor="serial", point_fn=fns.synthetic)
        assert sw.equal_results(serial.dataset, res.dataset)
    finally:
        c.close()


def test_real_replays_through_the_cli_on_an_external_scheduler(cluster, tmp_path):
    args = ["sweep", str(SMOKE), "--set", "duration_s=60", "--set", "drain_s=30", "--grid", "workload.sessions_per_s=0.2,0.4",
            "--policies", "round_robin,performance_only", "--no-progress"]  # fmt: skip
    assert main([*args, "--executor", cluster.address, "--out", str(tmp_path / "d")]) == 0
    assert main([*args, "--executor", "serial", "--out", str(tmp_path / "s")]) == 0
    d, s = sw.load_sweep(tmp_path / "d"), sw.load_sweep(tmp_path / "s")
    assert (d["status"] == "ok").all() and (d["requests"] > 0).all()
    assert sw.equal_results(d, s)
