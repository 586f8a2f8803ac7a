version 1.0

# A task that runs long enough to be aborted.
workflow abortable {
  input {
    Int seconds = 120
  }

  call wait_a_while {
    input:
      seconds = seconds
  }

  output {
    String done = wait_a_while.done
  }
}

task wait_a_while {
  input {
    Int seconds
  }

  command <<<
    sleep ~{seconds}
    echo done
  >>>

  output {
    String done = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}
