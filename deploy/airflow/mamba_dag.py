"""Airflow DAGs for mamba-spark: a nightly scoring run and a training run that resumes from its newest checkpoint.

Needs apache-airflow-providers-apache-spark and a Spark connection (Admin -> Connections, conn_id "spark_default",
host "yarn", "spark://...", "k8s://..." or "local[*]"). Paths and sizes are DAG params, templated per run.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

JAR = "{{ params.jar }}"
COMMON_CONF = {
    # the engine's fast CPU path (Vector API) and Java 17
    "spark.driver.extraJavaOptions": "--add-modules=jdk.incubator.vector",
    "spark.executor.extraJavaOptions": "--add-modules=jdk.incubator.vector",
    "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
}
DEFAULT_ARGS = {
    "owner": "ml-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
}

with DAG(
    dag_id="mamba_score_nightly",
    description="Score the day's documents with a Mamba model (loss, perplexity per document)",
    start_date=datetime(2026, 11, 1),
    schedule="0 2 * * *",
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={
        "jar": "hdfs:///apps/mamba-spark/mamba-spark-0.1.0-SNAPSHOT.jar",
        "model": "hdfs:///models/mamba-130m-hf",
        "input": "hdfs:///corpus/daily/{{ ds }}",
        "output": "hdfs:///scores/{{ ds }}",
    },
    tags=["mamba", "scoring"],
) as score_dag:
    SparkSubmitOperator(
        task_id="score",
        conn_id="spark_default",
        application=JAR,
        java_class="org.mambaspark.jobs.ScoreJob",
        conf=COMMON_CONF,
        application_args=[
            "--model", "{{ params.model }}",
            "--input", "{{ params.input }}",
            "--output", "{{ params.output }}",
            "--overwrite",
        ],
        name="mamba-score-{{ ds_nodash }}",
        execution_timeout=timedelta(hours=6),
    )

with DAG(
    dag_id="mamba_train",
    description="Data-parallel training; a retry resumes from the newest checkpoint in the output path",
    start_date=datetime(2026, 11, 1),
    schedule=None,
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
) as train_dag:
    SparkSubmitOperator(
        task_id="train",
        conn_id="spark_default",
        application=JAR,
        java_class="org.mambaspark.jobs.TrainJob",
        conf=COMMON_CONF,
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
