"""Airflow DAGs for mamba-spark: a nightly scoring run and a training run that resumes from its newest checkpoint.

Works on Airflow 2.4+ and 3.x with apache-airflow-providers-apache-spark (pip install
apache-airflow-providers-apache-spark). Full set-up and what was tested: docs/notebooks-and-airflow.md.

What the worker that runs the task needs:

* ``spark-submit`` on its PATH. The provider runs the binary named by the connection's ``spark-binary`` extra
  (``spark-submit``, ``spark2-submit`` or ``spark3-submit``) from PATH; since provider 4.0 it takes no
  ``spark-home``. Spark 3.5 on Java 17, e.g. ``export PATH=/opt/spark-3.5.9/bin:$PATH`` in the worker's
  environment (or its container image).
* The connection ``spark_default``: the Spark master. Without it the provider logs "Could not load
  connection string spark_default, defaulting to yarn" and submits to YARN. Create it with one of::

      airflow connections add spark_default --conn-type spark --conn-host 'spark://spark-master' --conn-port 7077
      airflow connections add spark_default --conn-type spark --conn-host yarn --conn-extra '{"deploy-mode": "cluster"}'
      airflow connections add spark_default --conn-type spark --conn-host 'k8s://https://k8s-api:6443'
      airflow connections add spark_default --conn-type spark --conn-host 'local[*]'

  or as an environment variable of the scheduler and workers:
  ``AIRFLOW_CONN_SPARK_DEFAULT='{"conn_type": "spark", "host": "local[*]"}'``.
* The jar (``params.jar``) where spark-submit can read it: HDFS, S3, or a local path on the worker
  (``mvn -q package -DskipTests`` builds ``jobs/target/mamba-spark-0.1.0-SNAPSHOT.jar``).

Dates are templated where Airflow renders templates: in ``application_args``, ``conf`` and ``name`` (the
operator's template fields). Params are plain values: Airflow does not render ``{{ ... }}`` inside them, so
the nightly run's folders are ``params.input_root``/``{{ ds }}`` and ``params.output_root``/``{{ ds }}``. In
Airflow 3 a manually triggered run needs a logical date for ``{{ ds }}`` (give one when triggering).

Job options are params too, passed as ``spark.mamba.*`` settings (README, "Configuration"): an empty
``input_format`` lets the job tell the format from the files in the folder (JSON lines, text or Parquet,
also without extensions); name it (``json``, ``text``, ``parquet``) to skip the look.

``deploy/check-dag.sh`` renders the nightly task's spark-submit command from this file (standard library
only) and runs it through Spark's own SparkSubmit on local[*].
"""
from datetime import datetime, timedelta

from airflow import __version__ as AIRFLOW_VERSION
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG


def schedule(cron):
    """The DAG's schedule argument: `schedule` from Airflow 2.4 on (3.x has only it), `schedule_interval` before."""
    major, minor = (int(p) for p in AIRFLOW_VERSION.split(".")[:2])
    return {"schedule": cron} if (major, minor) >= (2, 4) else {"schedule_interval": cron}


JAR = "{{ params.jar }}"
COMMON_CONF = {
    # the engine's fast CPU path (Vector API) on Java 17; huge pages for the executors' weights (Linux)
    "spark.driver.extraJavaOptions": "--add-modules=jdk.incubator.vector",
    "spark.executor.extraJavaOptions": "--add-modules=jdk.incubator.vector -XX:+UseTransparentHugePages",
    "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
}
# training executors allocate a new optimizer state every step: touch their whole heap once at start
# (AlwaysPreTouch touches the initial heap only, so -Xms is the executor's memory: keep the two equal)
TRAIN_EXECUTOR_MEMORY = "32g"
TRAIN_CONF = dict(
    COMMON_CONF,
    **{
        "spark.executor.memory": TRAIN_EXECUTOR_MEMORY,
        "spark.executor.extraJavaOptions": COMMON_CONF["spark.executor.extraJavaOptions"]
        + " -XX:+AlwaysPreTouch -Xms"
        + TRAIN_EXECUTOR_MEMORY,
    },
)
DEFAULT_ARGS = {
    "owner": "ml-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
}

with DAG(
    dag_id="mamba_score_nightly",
    description="Score the day's documents with a Mamba model (loss, perplexity per document)",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={
        "jar": "hdfs:///apps/mamba-spark/mamba-spark-0.1.0-SNAPSHOT.jar",
        "model": "hdfs:///models/mamba-130m-hf",
        # the run reads <input_root>/<ds> and writes <output_root>/<ds>
        "input_root": "hdfs:///corpus/daily",
        "output_root": "hdfs:///scores",
        "input_format": "",  # "" = told from the files; or json | text | parquet
        "output_format": "parquet",  # or json (JSON lines)
        "text_col": "text",
        "batch_size": 32,
        "partitions": 0,  # 0 = as read
    },
    tags=["mamba", "scoring"],
    **schedule("0 2 * * *"),
) as score_dag:
    SparkSubmitOperator(
        task_id="score",
        conn_id="spark_default",
        application=JAR,
        java_class="org.mambaspark.jobs.ScoreJob",
        conf={
            **COMMON_CONF,
            "spark.mamba.inputFormat": "{{ params.input_format }}",
            "spark.mamba.outputFormat": "{{ params.output_format }}",
            "spark.mamba.textCol": "{{ params.text_col }}",
            "spark.mamba.batchSize": "{{ params.batch_size }}",
            "spark.mamba.partitions": "{{ params.partitions }}",
        },
        application_args=[
            "--model", "{{ params.model }}",
            "--input", "{{ params.input_root }}/{{ ds }}",
            "--output", "{{ params.output_root }}/{{ ds }}",
            # a retry replaces the half-written output of the failed attempt
            "--overwrite",
        ],
        name="mamba-score-{{ ds_nodash }}",
        execution_timeout=timedelta(hours=6),
    )

with DAG(
    dag_id="mamba_train",
    description="Data-parallel training; a retry resumes from the newest checkpoint in the output path",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={
        "jar": "hdfs:///apps/mamba-spark/mamba-spark-0.1.0-SNAPSHOT.jar",
        "init": "hdfs:///models/mamba-130m-hf",
        "input": "hdfs:///corpus/train.jsonl",
        "output": "hdfs:///runs/mamba-finetune",
        "steps": 1000,
        "global_batch": 64,
        "seq_len": 1024,
        "lr": "3e-4",
    },
    tags=["mamba", "training"],
    **schedule(None),
) as train_dag:
    SparkSubmitOperator(
        task_id="train",
        conn_id="spark_default",
        application=JAR,
        java_class="org.mambaspark.jobs.TrainJob",
        conf=TRAIN_CONF,
        application_args=[
            "--init", "{{ params.init }}",
            "--input", "{{ params.input }}",
            "--output", "{{ params.output }}",
            "--steps", "{{ params.steps }}",
            "--global-batch", "{{ params.global_batch }}",
            "--seq-len", "{{ params.seq_len }}",
            "--lr", "{{ params.lr }}",
            "--checkpoint-every", "50",
            # a retry (or a rerun) continues the same trajectory from the newest checkpoint
            "--auto-resume",
        ],
        name="mamba-train-{{ ds_nodash }}",
    )
