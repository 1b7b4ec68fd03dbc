"""One sample of one micro benchmark, in a fresh process. Run by micro.py, not by hand.

    python -I _micro_child.py IMPL WORKLOAD N INNER [warmup=K] [profile]

Prints one JSON object on stdout: the wall and CPU time of each of INNER timed runs (after one
warm-up run at N/2 and then K more at full size, default 0; PyPy's JIT needs those) plus what
was actually running, so the parent can refuse a sample whose loop is not the one its row
claims. Exit status 3 means "wrong implementation": the parent drops that row for the rest
of the run rather than report numbers for the wrong thing.

With "profile" the timed runs execute under cProfile and the 30 costliest functions (by own
time) go to stderr; only Python-level code shows, so it is for the pure build and asyncio.

Self-contained on purpose: the parent starts it with `python -I` (no PYTHON* variables, no
user site, no script directory on sys.path), so it imports nothing from bench/.

Each workload is a coroutine that runs on the loop under test and times itself (perf_counter
and process_time, see stop()) from just before the first scheduling call to just after it
has seen the last effect, so interpreter start-up, imports and loop creation are never
inside the timed part.
"""

import asyncio
import gc
import json
import random
import socket
import sys
import time

perf_counter = time.perf_counter
process_time = time.process_time


def start():
    return perf_counter(), process_time()


def stop(t0):
    """(wall seconds, CPU seconds of this process) since start() gave t0.

    CPU time (user + system, CLOCK_PROCESS_CPUTIME_ID) leaves out the time this process sat
    preempted by other work on a shared core, which wall time cannot. Everything a workload
    does, including both ends of the socket pair and the kernel's work in their syscalls,
    happens in this one process and nothing in it sleeps, so on a quiet machine the two
    agree.
    """
    return perf_counter() - t0[0], process_time() - t0[1]


# --- workloads ---------------------------------------------------------------------------
# Each returns stop(t0), (wall, cpu) seconds, for n operations. One operation is:
#   call_soon        one call_soon() plus running its callback (all n queued, then run)
#   call_soon_chain  one callback that schedules the next one (one loop pass per op)
#   timers           one call_later() that is later either cancelled or fired (half each)
#   pingpong         one round trip between two tasks through two futures
#   sock_64/sock_1k  one echo round trip over a socketpair via sock_sendall/sock_recv


async def wl_call_soon(loop, n):
    done = loop.create_future()
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    call_soon = loop.call_soon
    t0 = start()
    for _ in range(n):
        call_soon(cb)
    await done
    return stop(t0)


async def wl_call_soon_chain(loop, n):
    done = loop.create_future()
    count = 0
    call_soon = loop.call_soon

    def cb():
        nonlocal count
        count += 1
        if count < n:
            call_soon(cb)
        else:
            done.set_result(None)

    t0 = start()
    call_soon(cb)
    await done
    return stop(t0)


def timer_plan(n):
    """Delays and cancel order for n timers, identical in every process (fixed seed).

    Half the timers get a long random delay (1..10 s, so they land all over the heap) and are
    cancelled in random order; the other half get a zero or tiny delay (0..0.5 ms) and fire.
    Scheduling n timers takes far longer than 0.5 ms, so by the time the loop next polls all
    firing timers are due: the run measures timer bookkeeping, not sleeping.
    """
    rng = random.Random(20261122)
    kinds = [True] * (n // 2) + [False] * (n - n // 2)  # True: cancel it
    rng.shuffle(kinds)
    delays = []
    cancel = []
    for i, kill in enumerate(kinds):
        if kill:
            delays.append(rng.uniform(1.0, 10.0))
            cancel.append(i)
        else:
            delays.append(0.0 if rng.random() < 0.25 else rng.uniform(0.0, 0.0005))
    rng.shuffle(cancel)
    return delays, cancel


async def wl_timers(loop, n, plan):
    delays, cancel = plan
    done = loop.create_future()
    remaining = n - len(cancel)

    def cb():
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            done.set_result(None)

    call_later = loop.call_later
    t0 = start()
    handles = [call_later(d, cb) for d in delays]
    for i in cancel:
        handles[i].cancel()
    await done
    return stop(t0)


async def wl_pingpong(loop, n):
    # Invariant: a player creates its next inbox future before it resolves the other
    # player's, so the other side always finds somewhere to put its reply.
    create_future = loop.create_future
    inbox = [None, create_future()]  # [A's, B's]

    async def player_a():
        for i in range(n):
            mine = create_future()
            inbox[0] = mine
            inbox[1].set_result(i)
            v = await mine
            assert v == i + 1
        return v

    async def player_b():
        for _ in range(n):
            v = await inbox[1]
            inbox[1] = create_future()
            inbox[0].set_result(v + 1)

    t0 = start()
    b = loop.create_task(player_b())
    await loop.create_task(player_a())
    await b
    return stop(t0)


async def wl_sock(loop, n, size):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    msg = b"x" * size
    sock_recv = loop.sock_recv
    sock_sendall = loop.sock_sendall

    async def echo():
        left = n * size
        while left:
            data = await sock_recv(b, 65536)
            if not data:
                raise RuntimeError("peer closed early")
            left -= len(data)
            await sock_sendall(b, data)

    try:
        server = loop.create_task(echo())
        t0 = start()
        for _ in range(n):
            await sock_sendall(a, msg)
            left = size
            while left:
                data = await sock_recv(a, 65536)
                if not data:
                    raise RuntimeError("peer closed early")
                left -= len(data)
        elapsed = stop(t0)
        await server
        return elapsed
    finally:
        a.close()
        b.close()


WORKLOADS = {
    "call_soon": lambda loop, n, _: wl_call_soon(loop, n),
    "call_soon_chain": lambda loop, n, _: wl_call_soon_chain(loop, n),
    "timers": lambda loop, n, plan: wl_timers(loop, n, plan),
    "pingpong": lambda loop, n, _: wl_pingpong(loop, n),
    "sock_64": lambda loop, n, _: wl_sock(loop, n, 64),
    "sock_1k": lambda loop, n, _: wl_sock(loop, n, 1024),
}


# --- the loop under test -----------------------------------------------------------------


class WrongImpl(Exception):
    pass


def make_loop(impl):
    """Create the loop for impl and return (loop, facts); raise WrongImpl on a mismatch."""
    facts = {"python": sys.version.split()[0], "implementation": sys.implementation.name,
             "executable": sys.executable}
    if impl == "asyncio":
        loop = asyncio.new_event_loop()
        if not (isinstance(loop, asyncio.BaseEventLoop)
                and type(loop).__module__.startswith("asyncio.")):
            raise WrongImpl(f"asyncio.new_event_loop() gave {type(loop)!r}")
    elif impl == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
        if not isinstance(loop, uvloop.Loop):
            raise WrongImpl(f"uvloop.new_event_loop() gave {type(loop)!r}")
        facts["uvloop"] = uvloop.__version__
    elif impl in ("tide-c", "tide-py"):
        import tideloop

        want = impl == "tide-c"
        if tideloop.COMPILED is not want:
            raise WrongImpl(f"row {impl} wants tideloop.COMPILED={want}, this install has "
                            f"{tideloop.COMPILED!r} ({tideloop.__file__})")
        loop = tideloop.new_event_loop()
        if not type(loop).__module__.startswith("tideloop"):
            raise WrongImpl(f"tideloop.new_event_loop() gave {type(loop)!r}")
        facts["tideloop"] = getattr(tideloop, "__version__", "?")
        facts["tideloop_file"] = tideloop.__file__
        facts["compiled"] = tideloop.COMPILED
    else:
        raise WrongImpl(f"unknown implementation {impl!r}")
    facts["loop_type"] = f"{type(loop).__module__}.{type(loop).__qualname__}"
    return loop, facts


def main(argv):
    impl, workload, n, inner = argv[0], argv[1], int(argv[2]), int(argv[3])
    profile = "profile" in argv[4:]
    extra_warmup = next((int(a[7:]) for a in argv[4:] if a.startswith("warmup=")), 0)
    try:
        loop, facts = make_loop(impl)
    except WrongImpl as e:
        print(json.dumps({"error": str(e), "wrong_impl": True}))
        return 3
    run = WORKLOADS[workload]
    plans = {}

    def plan(k):
        if workload != "timers":
            return None
        if k not in plans:
            plans[k] = timer_plan(k)
        return plans[k]

    try:
        warm = max(n // 2, 1)
        loop.run_until_complete(run(loop, warm, plan(warm)))
        for _ in range(extra_warmup):
            todo = run(loop, n, plan(n))
            gc.collect()  # as before a timed run, so the GC's state is the timed runs' one
            loop.run_until_complete(todo)
        walls, cpus = [], []
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile()
        for _ in range(inner):
            todo = run(loop, n, plan(n))
            gc.collect()
            if prof is not None:
                prof.enable()
            wall, cpu = loop.run_until_complete(todo)
            walls.append(wall)
            cpus.append(cpu)
            if prof is not None:
                prof.disable()
    finally:
        loop.close()
    if prof is not None:
        import pstats

        print(f"--- cProfile: {impl} {workload} n={n} x{inner} (times inflated by profiling)",
              file=sys.stderr)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    facts.update(impl=impl, workload=workload, n=n, warmup=extra_warmup, wall=walls, cpu=cpus)
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
