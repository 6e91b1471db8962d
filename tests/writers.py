"""Concurrent writer processes for the SQLite stores' tests."""
import multiprocessing


def run_writers(target, args: list[tuple], method: str = "spawn") -> list[int]:
    """Start one process per `args` entry, each calling target(*entry, barrier) with a barrier they all share
    (so they write at once); their exit codes."""
    context = multiprocessing.get_context(method)
    start = context.Barrier(len(args))
    processes = [context.Process(target=target, args=(*entry, start)) for entry in args]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=60)
    return [p.exitcode for p in processes]
