-- spark-sql with the extension (the model is a session setting):
--   spark-sql --jars mamba-spark.jar --conf spark.sql.extensions=org.mambaspark.spark.MambaSqlExtensions \
--             --conf spark.mamba.model=hdfs:///models/mamba-130m-hf -f deploy/sql/score.sql
CREATE OR REPLACE TEMPORARY VIEW docs AS SELECT * FROM json.`hdfs:///corpus/docs.jsonl`;
SELECT id, mamba_score(text) AS score FROM docs LIMIT 20;
SELECT id, mamba_generate(text, 32) AS continuation FROM docs LIMIT 5;
