# tests/debian.rs python_multiprocessing_same_as_native: Pool, Queue, a shared Value under a Lock, a Semaphore (POSIX semaphores in /dev/shm) with the fork, spawn and forkserver start methods; shared_memory and a Manager.
set -e
cat >/tmp/mp.py <<'PY'
import multiprocessing as mp, os, sys
from multiprocessing import shared_memory

def square(x):
    return x * x

def worker(q, counter, lock, n):
    for _ in range(n):
        with lock:
            counter.value += 1
    q.put(("done", n))

def run(method):
    ctx = mp.get_context(method)
    with ctx.Pool(3) as pool:
        total = sum(pool.map(square, range(100)))
        asy = pool.apply_async(square, (12,)).get(timeout=60)
    q, counter, lock = ctx.Queue(), ctx.Value("i", 0), ctx.Lock()
    procs = [ctx.Process(target=worker, args=(q, counter, lock, 300)) for _ in range(3)]
    for p in procs:
        p.start()
    got = sorted(q.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(60)
    sem = ctx.Semaphore(2)
    sem.acquire(); sem.acquire()
    print(method, "pool", total, asy, "queue", got, "value", counter.value,
          "exit", [p.exitcode for p in procs], "sem full", not sem.acquire(timeout=0.1), flush=True)

if __name__ == "__main__":
    for method in sys.argv[1:]:
        run(method)
    shm = shared_memory.SharedMemory(create=True, size=4096)
    shm.buf[:5] = b"hello"
    other = shared_memory.SharedMemory(name=shm.name)
    print("shared_memory", bytes(other.buf[:5]), os.path.exists("/dev/shm/" + shm.name.lstrip("/")))
    other.close(); shm.close(); shm.unlink()
    print("unlinked", not os.path.exists("/dev/shm/" + shm.name.lstrip("/")))
    with mp.Manager() as m:
        d = m.dict(); l = m.list(range(3)); d["k"] = sum(l)
        print("manager", dict(d))
PY
timeout 300 python3 /tmp/mp.py fork spawn forkserver
echo "mp done"
