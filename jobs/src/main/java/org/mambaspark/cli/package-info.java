/**
 * {@code bin/mamba}: picocli subcommands, each thin (parse, load, call the engine, write); a user's
 * mistake is one {@code error:} line and a non-zero exit.
 */
package org.mambaspark.cli;
