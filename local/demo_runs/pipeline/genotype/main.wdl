version 1.0

# The first step of a two-step pipeline: one run per sample (a row of samples.tsv); a sample
# named "bad-..." fails. options.json names the second step, a gather over the samples.
workflow per_sample {
  input {
    String sample_name
  }

  call haplotype { input: sample_name = sample_name }

  output {
    String gvcf = haplotype.gvcf
  }
}

task haplotype {
  input {
    String sample_name
  }

  command <<<
    case "~{sample_name}" in
      bad-*) echo "no reads for ~{sample_name}" >&2; exit 2 ;;
    esac
    echo "s3://lab-data/~{sample_name}.g.vcf.gz"
  >>>

  output {
    String gvcf = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}
