"""The longest GET / on a real `esquire serve` while a ~100 MB `_bulk` runs (issue 10: nothing a
request computes may hold the event loop). Usage: .venv/bin/python scripts/liveness.py"""
import http.client, json, pathlib, socket, subprocess, sys, tempfile, threading, time
ROOT = pathlib.Path(__file__).resolve().parent.parent
port = socket.socket(); port.bind(("127.0.0.1", 0)); PORT = port.getsockname()[1]; port.close()
data = tempfile.mkdtemp()
proc = subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(PORT), "--data-dir", data,
                         "--log-level", "warning"], cwd=ROOT)
def get(path, method="GET", body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=300); c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse(); out = r.read(); c.close(); return r.status, out
for _ in range(200):
    try: get("/"); break
    except OSError: time.sleep(0.05)
line = b'{"index":{}}\n{"message":"' + b"x" * 80 + b'","n":1,"host":{"name":"h1"}}\n'
body = line * (99_000_000 // len(line))
done = threading.Event(); worst = [0.0]
def poll():
    while not done.is_set():
        t = time.monotonic(); get("/"); worst[0] = max(worst[0], time.monotonic() - t); time.sleep(0.05)
th = threading.Thread(target=poll); th.start()
t = time.monotonic(); status, out = get("/big/_bulk", "POST", body, {"Content-Type": "application/x-ndjson"})
took = time.monotonic() - t; done.set(); th.join()
print(f"bulk of {len(body)/1e6:.0f} MB ({len(body)//len(line)} docs): {status} in {took:.1f} s, errors={json.loads(out)['errors']}; "
      f"worst GET / during it: {worst[0]*1000:.0f} ms")
proc.terminate(); proc.wait()
