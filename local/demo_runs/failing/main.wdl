version 1.0

# The second task fails: it looks for a reference file that is not there.
workflow failing_demo {
  input {
    String sample
  }

  call prepare {
    input:
      sample = sample
  }

  call align {
    input:
      prepared = prepare.prepared
  }

  output {
    String aligned = align.aligned
  }
}

task prepare {
  input {
    String sample
  }

  command <<<
    echo "~{sample}.prepared"
  >>>

  output {
    String prepared = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}

task align {
  input {
    String prepared
  }

  command <<<
    echo "aligning ~{prepared}" >&2
    echo "error: reference genome /refs/GRCh38.fa not found" >&2
    exit 3
  >>>

  output {
    String aligned = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}
