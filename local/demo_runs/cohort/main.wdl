version 1.0

# The demo's cohort: one run per row of samples.tsv; the sample whose reads file is missing fails.
workflow cohort_demo {
  input {
    String sample_id
    Int reads
  }

  call count { input: sample_id = sample_id, reads = reads }

  output {
    String summary = count.summary
  }
}

task count {
  input {
    String sample_id
    Int reads
  }

  command <<<
    if [ ~{reads} -le 0 ]; then echo "no reads for ~{sample_id}" >&2; exit 4; fi
    echo "~{sample_id}: ~{reads} reads"
  >>>

  output {
    String summary = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}
