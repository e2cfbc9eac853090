"""Start and stop a local anvil node (from the npm package installed by `make install`)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from warden.chain.artifacts import load_artifact
from warden.chain.connection import Chain
from warden.chain.multicall import MULTICALL3
from warden.errors import OperationFailed

# anvil's first default account: a publicly known test key, never to be used on a real chain
DEV_PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ANVIL_NPM_PATH = Path("contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
LISTENING = re.compile(r"Listening on (\S+):(\d+)")


def find_anvil() -> Path:
    """WARDEN_ANVIL, else the checkout's npm install, else `anvil` on PATH."""
    override = os.environ.get("WARDEN_ANVIL")
    if override:
        return Path(override)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / ANVIL_NPM_PATH
        if candidate.exists():
            return candidate
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise OperationFailed("anvil not found: run `make install` (it installs anvil from npm into contracts/)")


@dataclass
class Anvil:
    pid: int
    url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    # anvil spills historical states to disk (gigabytes on long chains) and never deletes them itself
    cache_dir: Path | None = None
    owns_log: bool = False

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait (anvil writes its --state file on the way out), then remove its scratch files."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        else:
            stop_pid(self.pid, timeout)
        if self.cache_dir is not None:
            shutil.rmtree(self.cache_dir, ignore_errors=True)
        if self.owns_log:
            self.log_path.unlink(missing_ok=True)


def start_anvil(
    *,
    block_time: float | None = None,
    state_path: Path | None = None,
    log_path: Path | None = None,
    detach: bool = False,
    port: int = 0,
    timeout: float = 15.0,
) -> Anvil:
    """Start anvil on 127.0.0.1 (a free port unless `port`), wait until it listens, return its URL.

    `detach` puts it in its own session so it outlives this process (`warden devnet up --detach`).
    """
    binary = find_anvil()
    owns_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="warden-anvil-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    cache_dir = cache_dir_for(log_path) if not owns_log else Path(tempfile.mkdtemp(prefix="warden-anvil-cache-"))
    shutil.rmtree(cache_dir, ignore_errors=True)  # states left by a crashed run are of no use
    cache_dir.mkdir(parents=True, exist_ok=True)
    args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--cache-path", str(cache_dir)]
    if block_time:
        args += ["--block-time", f"{block_time:g}"]
    if state_path is not None:
        args += ["--state", str(state_path)]
    log = open(log_path, "wb")  # noqa: SIM115 - the child keeps writing after we return
    try:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detach
        )
    except OSError as exc:
        raise OperationFailed(f"cannot start anvil ({binary}): {exc}") from None
    finally:
        log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            url = f"http://{match.group(1)}:{match.group(2)}"
            return Anvil(process.pid, url, log_path, process, cache_dir, owns_log)
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-500:]
            raise OperationFailed(f"anvil exited with code {process.returncode}: {tail.strip()}")
        time.sleep(0.02)
    process.kill()
    shutil.rmtree(cache_dir, ignore_errors=True)
    raise OperationFailed(f"anvil did not start listening within {timeout:g}s (log: {log_path})")


def cache_dir_for(log_path: Path) -> Path:
    """Where an anvil whose log lives at `log_path` keeps its spilled states (next to the log)."""
    return log_path.with_name(log_path.stem + "-cache")


def pid_alive(pid: int) -> bool:
    """The process exists and has not exited (an exited child not yet reaped, a zombie, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust the signal check
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def stop_pid(pid: int, timeout: float = 10.0) -> bool:
    """Stop a process started by an earlier `warden devnet up --detach`; False if it was not running."""
    return stop_pids([pid], timeout)


def stop_pids(pids: list[int], timeout: float = 10.0) -> bool:
    """SIGTERM every live process in `pids` at once, wait for all (SIGKILL after `timeout`); False if none ran."""
    running = [pid for pid in pids if pid_alive(pid)]
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    waiting = list(running)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            # reap it when it is our own child (tests); otherwise just watch it go
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not pid_alive(pid):
                waiting.remove(pid)
        if waiting:
            time.sleep(0.05)
    for pid in waiting:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return bool(running)


def install_multicall(chain: Chain) -> None:
    """Put warden's aggregate3 contract at the Multicall3 address, as real chains have it (idempotent)."""
    code = load_artifact("Multicall").deployed_bytecode
    if chain.get_code(MULTICALL3) != code:
        chain.rpc.call("anvil_setCode", [MULTICALL3, "0x" + code.hex()])
