version 1.0

# A cohort whose samples named "bad-..." fail in their second task: the first task succeeds for
# every sample, so a re-run of the failures finds it in the call cache.
workflow cohort_qc {
  input {
    String sample_id
    Int reads = 100
  }

  call prepare { input: sample_id = sample_id, reads = reads }
  call count { input: sample_id = sample_id, prepared = prepare.prepared }

  output {
    String summary = count.summary
    Int reads_seen = prepare.reads_seen
  }
}

task prepare {
  input {
    String sample_id
    Int reads
  }

  command <<<
    echo "~{sample_id}"
    echo "~{reads}" >&2
  >>>

  output {
    String prepared = read_string(stdout())
    Int reads_seen = reads
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}

task count {
  input {
    String sample_id
    String prepared
  }

  command <<<
    case "~{prepared}" in
      bad-*) echo "cannot count ~{prepared}: the sample is unreadable" >&2; exit 3 ;;
    esac
    echo "counted ~{prepared}"
  >>>

  output {
    String summary = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}
