#!/usr/bin/env python3
"""stage-times.py EVENT_LOG...: where a Spark application's time went, a line per stage.

Reads Spark event logs (spark.eventLog.enabled; uncompressed JSON lines) and prints, for each completed stage in
order: its wall time, task count, the tasks' summed run, deserialization, GC and shuffle-write times (ms), and the
job description it ran under (the training step and its phase).
"""
import json
import sys


def stages(path):
    jobs, names, done, tasks = {}, {}, {}, {}
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            kind = e["Event"]
            if kind == "SparkListenerJobStart":
                desc = (e.get("Properties") or {}).get("spark.job.description", "")
                for sid in e.get("Stage IDs", []):
                    jobs[sid] = desc
            elif kind == "SparkListenerStageCompleted":
                s = e["Stage Info"]
                names[s["Stage ID"]] = s["Stage Name"].split(" at ")[0]
                if "Submission Time" in s and "Completion Time" in s:
                    done[s["Stage ID"]] = s["Completion Time"] - s["Submission Time"]
            elif kind == "SparkListenerTaskEnd":
                m = e.get("Task Metrics") or {}
                t = tasks.setdefault(e["Stage ID"], [0, 0, 0, 0, 0])
                t[0] += 1
                t[1] += m.get("Executor Run Time", 0)
                t[2] += m.get("Executor Deserialize Time", 0)
                t[3] += m.get("JVM GC Time", 0)
                t[4] += (m.get("Shuffle Write Metrics") or {}).get("Shuffle Write Time", 0) // 1_000_000
    for sid in sorted(done):
        yield sid, names[sid], done[sid], tasks.get(sid, [0] * 5), jobs.get(sid, "")


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for path in paths:
        print(f"# {path}")
        print(f"{'stage':>5} {'what':<16} {'wall_ms':>8} {'tasks':>5} {'run_ms':>8} {'deser_ms':>8} "
              f"{'gc_ms':>6} {'shuffle_w_ms':>12}  job")
        for sid, name, wall, t, job in stages(path):
            print(f"{sid:>5} {name[:16]:<16} {wall:>8} {t[0]:>5} {t[1]:>8} {t[2]:>8} {t[3]:>6} {t[4]:>12}  {job}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
