# Sourced by bin/mamba and deploy/mamba-submit: the JVM options every mamba-spark JVM needs, in one place.
#
# MAMBA_VECTOR_MODULE: the engine's fast CPU path uses the Vector API, incubating in Java 17; without the module
#   the engine runs scalar loops (2.7x slower on the score job) and says so loudly.
# MAMBA_JAVA17_OPENS: what Spark's own launcher gives a JVM it starts on Java 17 (Spark reaches into JDK
#   internals). A JVM that Spark's launcher does not start needs them given: bin/mamba's embedded Spark, and the
#   driver of --deploy-mode cluster, which a standalone worker starts without them.
MAMBA_VECTOR_MODULE="--add-modules=jdk.incubator.vector"
MAMBA_JAVA17_OPENS=(-XX:+IgnoreUnrecognizedVMOptions
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
  --add-opens=java.base/sun.security.action=ALL-UNNAMED --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
  -Djdk.reflect.useDirectMethodHandle=false)
