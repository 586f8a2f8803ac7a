version 1.0

# A scatter over three samples; the task lives in an imported file.
import "tasks/greet.wdl" as greet

workflow scatter_demo {
  input {
    Array[String] samples
  }

  scatter (sample in samples) {
    call greet.count_letters {
      input:
        sample = sample
    }
  }

  call greet.summarise {
    input:
      counts = count_letters.letters
  }

  output {
    Array[Int] letters = count_letters.letters
    String summary = summarise.summary
  }
}
