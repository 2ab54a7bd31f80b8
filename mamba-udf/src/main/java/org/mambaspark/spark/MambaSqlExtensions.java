package org.mambaspark.spark;

import org.apache.spark.sql.Column;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.ExpressionInfo;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.functions;
import scala.Tuple3;
import scala.collection.JavaConverters;
import scala.collection.Seq;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

/**
 * {@code spark.sql.extensions=org.mambaspark.spark.MambaSqlExtensions} (set when the session
 * starts) registers three SQL functions over the model in {@code spark.mamba.model}:
 *
 * <ul>
 *   <li>{@code mamba_score(text)} → {@code struct<loss, perplexity, tokens, error>};
 *   <li>{@code mamba_embed(text)} → {@code array<float>};
 *   <li>{@code mamba_generate(text, max_tokens)} → {@code string}.
 * </ul>
 *
 * The settings are read when a query using them is analysed, so {@code SET spark.mamba.model=...}
 * in the same session applies. Each is the matching UDF class ({@link MambaScoreUdf}, {@link
 * MambaEmbedUdf}, {@link MambaGenerateUdf}) as a Catalyst expression.
 */
public final class MambaSqlExtensions extends AbstractFunction1<SparkSessionExtensions, BoxedUnit> {
  @Override
  public BoxedUnit apply(SparkSessionExtensions ext) {
    ext.injectFunction(
        function(
            "mamba_score",
            "_FUNC_(text) - struct<loss, perplexity, tokens, error>: mean next-token cross-entropy"
                + " of text under spark.mamba.model",
            1,
            () -> functions.udf(new MambaScoreUdf(), MambaScoreUdf.RETURN_TYPE)));
    ext.injectFunction(
        function(
            "mamba_embed",
            "_FUNC_(text) - array<float>: the pooled final hidden state of text under"
                + " spark.mamba.model",
            1,
            () -> functions.udf(new MambaEmbedUdf(), MambaEmbedUdf.RETURN_TYPE)));
    ext.injectFunction(
        function(
            "mamba_generate",
            "_FUNC_(text, max_tokens) - string: a continuation of text by spark.mamba.model",
            2,
            () -> functions.udf(new MambaGenerateUdf(), MambaGenerateUdf.RETURN_TYPE)));
    return BoxedUnit.UNIT;
  }

  private interface UdfFactory {
    UserDefinedFunction create();
  }

  private static Tuple3<
          FunctionIdentifier, ExpressionInfo, scala.Function1<Seq<Expression>, Expression>>
      function(String name, String usage, int arity, UdfFactory factory) {
    ExpressionInfo info =
        new ExpressionInfo(
            MambaSqlExtensions.class.getName(),
            null,
            name,
            usage,
            "",
            "",
            "",
            "",
            "",
            "",
            "java_udf");
    scala.Function1<Seq<Expression>, Expression> builder =
        new AbstractFunction1<Seq<Expression>, Expression>() {
          @Override
          public Expression apply(Seq<Expression> args) {
            if (args.size() != arity) {
              throw new IllegalArgumentException(
                  name + " takes " + arity + " argument(s), got " + args.size());
            }
            Column[] cols = new Column[arity];
            int i = 0;
            for (Expression e : JavaConverters.seqAsJavaList(args)) {
              cols[i++] = new Column(e);
            }
            return factory.create().withName(name).apply(cols).expr();
          }
        };
    return new Tuple3<>(new FunctionIdentifier(name), info, builder);
  }
}
