version 1.0

workflow quick {
  input {
    String who = "world"
  }

  call say {
    input:
      who = who
  }

  output {
    String message = say.message
  }
}

task say {
  input {
    String who
  }

  command <<<
    echo "Hello, ~{who}!"
  >>>

  output {
    String message = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}
