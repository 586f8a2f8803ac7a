version 1.0

task count_letters {
  input {
    String sample
  }

  command <<<
    echo "processing ~{sample}" >&2
    printf '%s' "~{sample}" | wc -c | tr -d ' '
  >>>

  output {
    Int letters = read_int(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
    cpu: 1
    memory: "1 GiB"
  }
}

task summarise {
  input {
    Array[Int] counts
  }

  command <<<
    echo "~{length(counts)} samples, ~{sep=' + ' counts} letters"
  >>>

  output {
    String summary = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
    cpu: 1
    memory: "1 GiB"
  }
}
