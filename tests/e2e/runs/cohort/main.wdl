version 1.0

workflow cohort {
  input {
    String sample_id
    Int reads = 1000
    Boolean paired = false
    Array[String] tags = []
    File? fastq
    String greeting
  }

  call count {
    input:
      sample_id = sample_id,
      reads = reads,
      greeting = greeting
  }

  output {
    String summary = count.summary
  }
}

task count {
  input {
    String sample_id
    Int reads
    String greeting
  }

  command <<<
    echo "~{greeting} ~{sample_id}: ~{reads} reads"
  >>>

  output {
    String summary = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}
