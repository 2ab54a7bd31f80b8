#!/usr/bin/env bash
# deploy/check-dag.sh [DATE]: the Airflow DAG as a worker runs it, without Airflow installed (called by check.sh).
#
# 1. Loads deploy/airflow/mamba_dag.py (Python's standard library only) against stand-ins for Airflow 2.x's and
#    3.x's import paths, records each DAG's arguments and each SparkSubmitOperator's, and checks them: the
#    schedule argument each version takes, no template inside params (Airflow does not render them).
# 2. Renders the nightly task's templates for DATE (default 2026-11-30) as Airflow does ({{ ds }},
#    {{ ds_nodash }}, {{ params.x }} in the operator's template fields) and builds the command the provider's
#    SparkSubmitHook runs: spark-submit --master M --conf k=v ... --name N --class C JAR ARGS.
# 3. Runs that command on local[2] with a spark-submit on PATH (deploy/mamba-submit --as-spark-submit, i.e.
#    Spark's own SparkSubmit) against a dated folder of JSON lines without extensions (as an upstream job
#    writes them, _SUCCESS and .crc beside), and checks the rows, the output and the application's name.
# Where `airflow` is on PATH it also loads the DAG folder with Airflow's DagBag (`airflow dags test
# mamba_score_nightly DATE` is the full run on a configured Airflow); where `jupyter`, pyspark and sparknlp are
# installed it runs the notebook headless (Spark NLP's jar comes from Maven Central).
set -euo pipefail
cd "$(dirname "$0")/.."
day="${1:-2026-11-30}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
jar="${MAMBA_JAR:-$PWD/jobs/target/mamba-spark-0.1.0-SNAPSHOT.jar}"
[ -f "$jar" ] || { echo "check-dag: $jar missing: run mvn -q package -DskipTests first" >&2; exit 1; }

# the day's folder, as an upstream Spark job leaves it: part files without an extension
corpus="$tmp/corpus/daily/$day"
mkdir -p "$corpus"
head -n 20 data/sample.jsonl > "$corpus/part-00000"
tail -n +21 data/sample.jsonl > "$corpus/part-00001"
: > "$corpus/_SUCCESS"
printf 'crc' > "$corpus/.part-00000.crc"
rows_in=$(cat "$corpus"/part-* | wc -l)

render() { # render.py ARGS...: prints the rendered command, one argument per NUL-terminated field
  python3 - "$@" <<'PY'
import ast, re, sys, types

dag_file, day, master = sys.argv[1:4]
overrides = dict(a.split("=", 1) for a in sys.argv[4:])
source = open(dag_file).read()
ast.parse(source, dag_file)  # a syntax error names the line here

# what Airflow renders: the provider's SparkSubmitOperator.template_fields (params are passed as they are)
TEMPLATE_FIELDS = ("application", "conf", "files", "py_files", "archives", "driver_class_path", "jars",
                   "packages", "exclude_packages", "keytab", "principal", "proxy_user", "name",
                   "application_args", "env_vars", "properties_file")


def load(version, has_sdk):
    """Runs the DAG file against stand-in airflow modules of this version; returns [(dag kwargs, [op kwargs])]."""
    dags = []

    class DAG:
        def __init__(self, **kw):
            if version >= (3, 0) and "schedule_interval" in kw:
                raise TypeError("Airflow 3 has no schedule_interval")
            if version < (2, 4) and "schedule" in kw:
                raise TypeError("Airflow before 2.4 has no schedule")
            self.kw, self.ops = kw, []

        def __enter__(self):
            dags.append(self)
            return self

        def __exit__(self, *a):
            return False

    class SparkSubmitOperator:
        def __init__(self, **kw):
            dags[-1].ops.append(kw)

    mods = {
        "airflow": types.ModuleType("airflow"),
        "airflow.providers.apache.spark.operators.spark_submit": types.ModuleType("spark_submit"),
    }
    mods["airflow"].__version__ = ".".join(map(str, version))
    mods["airflow.providers.apache.spark.operators.spark_submit"].SparkSubmitOperator = SparkSubmitOperator
    if has_sdk:
        mods["airflow.sdk"] = types.ModuleType("airflow.sdk")
        mods["airflow.sdk"].DAG = DAG
    else:
        mods["airflow"].DAG = DAG
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        exec(compile(source, dag_file, "exec"), {"__name__": "mamba_dag"})
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return [(d.kw, d.ops) for d in dags]


loaded = {v: load(v, sdk) for v, sdk in [((2, 3), False), ((2, 10), False), ((3, 0), True)]}
for version, dags in loaded.items():
    for kw, ops in dags:
        want = "schedule" if version >= (2, 4) else "schedule_interval"
        assert want in kw, f"Airflow {version}: DAG {kw['dag_id']} lacks {want}"
        for k, v in kw.get("params", {}).items():
            assert "{{" not in str(v) and "{%" not in str(v), (
                f"DAG {kw['dag_id']}: params['{k}'] holds a template; Airflow does not render params")
        for op in ops:
            assert op["conn_id"] == "spark_default", op["conn_id"]
print("check-dag: the DAG loads as Airflow 2.3 (schedule_interval), 2.10 and 3.0 (schedule, airflow.sdk)"
      " would load it; no template inside params", file=sys.stderr)

score = next(d for d in loaded[(3, 0)] if d[0]["dag_id"] == "mamba_score_nightly")
params = dict(score[0]["params"])
for k, v in overrides.items():
    assert k in params, f"no param {k}"
    params[k] = v
op = score[1][0]
context = {"ds": day, "ds_nodash": day.replace("-", "")}


def render(value):
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v) for v in value]
    if not isinstance(value, str):
        return value
    if "{%" in value:
        sys.exit(f"check-dag: unsupported template {value!r}")

    def one(m):
        expr = m.group(1).strip()
        if expr.startswith("params."):
            return str(params[expr[len("params."):]])
        if expr in context:
            return context[expr]
        sys.exit(f"check-dag: unsupported template {{{{ {expr} }}}}")

    return re.sub(r"\{\{(.*?)\}\}", one, value)


op = {k: (render(v) if k in TEMPLATE_FIELDS else v) for k, v in op.items()}
cmd = ["spark-submit", "--master", master]
for k, v in op.get("conf", {}).items():
    cmd += ["--conf", f"{k}={v}"]
cmd += ["--name", op["name"], "--class", op["java_class"], op["application"]]
cmd += [str(a) for a in op["application_args"]]
sys.stdout.write("".join(a + "\0" for a in cmd))
PY
}

mapfile -d '' cmd < <(render deploy/airflow/mamba_dag.py "$day" 'local[2]' \
  "jar=$jar" "model=$PWD/models/pycode-bytes" "input_root=$tmp/corpus/daily" "output_root=$tmp/scores" \
  "output_format=json")
[ "${#cmd[@]}" -gt 5 ] || { echo "check-dag: rendering failed" >&2; exit 1; }
printf 'check-dag: rendered for %s:' "$day"; printf ' %q' "${cmd[@]}"; printf '\n'
printf '%s\n' "${cmd[@]}" | grep -qx -- "$tmp/corpus/daily/$day" || { echo "check-dag: --input is not the day's folder" >&2; exit 1; }

# the worker: spark-submit on PATH, a cluster's spark-defaults.conf (here: an event log to read the name from)
mkdir -p "$tmp/bin" "$tmp/conf" "$tmp/events"
printf '#!/bin/sh\nexec "%s/deploy/mamba-submit" --as-spark-submit "$@"\n' "$PWD" > "$tmp/bin/spark-submit"
chmod +x "$tmp/bin/spark-submit"
printf 'spark.eventLog.enabled true\nspark.eventLog.dir file://%s\n' "$tmp/events" > "$tmp/conf/spark-defaults.conf"
PATH="$tmp/bin:$PATH" SPARK_CONF_DIR="$tmp/conf" "${cmd[@]}" > "$tmp/log" 2>&1 || {
  tail -n 30 "$tmp/log" >&2; echo "check-dag: the rendered command failed" >&2; exit 1; }
grep -E '^mamba score:' "$tmp/log" | cut -c1-160 || true
rows=$(cat "$tmp/scores/$day"/*.json | wc -l)
[ "$rows" -eq "$rows_in" ] || { echo "check-dag: expected $rows_in rows, got $rows" >&2; exit 1; }
name="mamba-score-${day//-/}"
grep -qh "\"App Name\":\"$name\"" "$tmp/events"/* || {
  echo "check-dag: the application is not named $name (event log: $(grep -oh '"App Name":"[^"]*"' "$tmp/events"/* | head -1))" >&2; exit 1; }
echo "check-dag: spark-submit from PATH scored $rows rows of $day's extension-less JSON lines; application named $name"

if command -v airflow > /dev/null; then
  AIRFLOW__CORE__LOAD_EXAMPLES=False python3 -c '
import sys
try:
    from airflow.models.dagbag import DagBag
except ImportError:
    from airflow.models import DagBag
b = DagBag("deploy/airflow", include_examples=False)
assert not b.import_errors, b.import_errors
print("check-dag: Airflow", __import__("airflow").__version__, "loads", sorted(b.dag_ids))'
else
  echo "check-dag: airflow not on PATH: DagBag load and 'airflow dags test' skipped"
fi

if command -v jupyter > /dev/null && python3 -c 'import pyspark, sparknlp' 2> /dev/null; then
  MAMBA_MASTER='local[2]' jupyter nbconvert --to notebook --execute deploy/notebooks/mamba-pyspark.ipynb \
    --output-dir "$tmp" --output executed.ipynb
  echo "check-dag: the notebook ran top to bottom (jupyter nbconvert --execute)"
else
  echo "check-dag: jupyter with pyspark and sparknlp not installed: the headless notebook run skipped"
fi
