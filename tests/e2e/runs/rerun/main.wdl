version 1.0

# A cohort check whose shard fails on an unreadable sample. Re-dropping the inputs file with the
# sample fixed reuses the shards that succeeded (call caching, asked for in options.json).
workflow cohort_qc {
  input {
    Array[String] samples
  }

  scatter (sample in samples) {
    call check { input: sample = sample }
  }

  call tally { input: verdicts = check.verdict }

  output {
    Array[String] verdicts = check.verdict
    String summary = tally.summary
  }
}

task check {
  input {
    String sample
  }

  command <<<
    case "~{sample}" in
      *unreadable*) echo "cannot read ~{sample}" >&2; exit 2 ;;
    esac
    echo "~{sample} passed"
  >>>

  output {
    String verdict = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}

task tally {
  input {
    Array[String] verdicts
  }

  command <<<
    echo "~{length(verdicts)} samples passed"
  >>>

  output {
    String summary = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}
