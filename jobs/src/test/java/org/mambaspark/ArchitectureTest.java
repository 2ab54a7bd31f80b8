package org.mambaspark;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/**
 * The layering of DESIGN.md as tests. Lives in the jobs module, whose test classpath holds both
 * modules.
 *
 * <p>Packages: the numerical core (model, ops, io, tokenizer, train) in mamba-udf; kernel (Aparapi)
 * and spark (what Spark calls) beside it in mamba-udf; cli and jobs (applications) in the jobs
 * module.
 */
@AnalyzeClasses(packages = "org.mambaspark", importOptions = ImportOption.DoNotIncludeTests.class)
class ArchitectureTest {
  static final String[] CORE = {
    "org.mambaspark.batch..",
    "org.mambaspark.model..",
    "org.mambaspark.ops..",
    "org.mambaspark.io..",
    "org.mambaspark.tokenizer..",
    "org.mambaspark.train.."
  };
  static final String[] MAMBA_UDF = {
    "org.mambaspark.batch..",
    "org.mambaspark.model..",
    "org.mambaspark.ops..",
    "org.mambaspark.io..",
    "org.mambaspark.tokenizer..",
    "org.mambaspark.train..",
    "org.mambaspark.kernel..",
    "org.mambaspark.spark.."
  };

  /**
   * The core can be read, tested and run (on the GPU machine too) without Spark, Hadoop or Aparapi.
   */
  @ArchTest
  static final ArchRule numericalCoreNeedsNeitherSparkNorAparapi =
      noClasses()
          .that()
          .resideInAnyPackage(CORE)
          .should()
          .dependOnClassesThat()
          .resideInAnyPackage(
              "org.apache.spark..", "org.apache.hadoop..", "scala..", "com.aparapi..");

  /** GPU code stays in one place: only the kernel package touches Aparapi. */
  @ArchTest
  static final ArchRule onlyTheKernelPackageImportsAparapi =
      noClasses()
          .that()
          .resideOutsideOfPackage("org.mambaspark.kernel..")
          .should()
          .dependOnClassesThat()
          .resideInAPackage("com.aparapi..");

  /** Spark glue stays thin and in its place: the spark package and the jobs applications. */
  @ArchTest
  static final ArchRule onlyTheSparkFacingPackagesImportSpark =
      noClasses()
          .that()
          .resideOutsideOfPackages("org.mambaspark.spark..", "org.mambaspark.jobs..")
          .should()
          .dependOnClassesThat()
          .resideInAnyPackage("org.apache.spark..", "scala..");

  /** jobs depends on mamba-udf, never the reverse. */
  @ArchTest
  static final ArchRule engineDoesNotDependOnTheApplications =
      noClasses()
          .that()
          .resideInAnyPackage(MAMBA_UDF)
          .should()
          .dependOnClassesThat()
          .resideInAnyPackage("org.mambaspark.cli..", "org.mambaspark.jobs..");

  /** Packages form a directed graph, so each can be understood from the ones below it. */
  @ArchTest
  static final ArchRule noCyclesBetweenPackages =
      slices().matching("org.mambaspark.(*)..").should().beFreeOfCycles();
}
