version 1.0

# The second step: one run over the samples the first step gathered, in sample order.
workflow joint {
  input {
    Array[String] gvcfs
    Array[String] sample_names
    String cohort
  }

  call genotype { input: gvcfs = gvcfs, sample_names = sample_names, cohort = cohort }

  output {
    String joint_vcf = genotype.joint_vcf
  }
}

task genotype {
  input {
    Array[String] gvcfs
    Array[String] sample_names
    String cohort
  }

  command <<<
    echo "~{cohort}: ~{sep=',' sample_names} from ~{length(gvcfs)} gVCFs"
  >>>

  output {
    String joint_vcf = read_string(stdout())
  }

  runtime {
    docker: "ubuntu:22.04"
  }
}
