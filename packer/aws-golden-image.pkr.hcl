# SPDX-License-Identifier: MIT
# Golden AMI with sendmail-shim baked in: a stock Debian AMI, playbooks/site.yml applied in its
# image-build flavour, then snapshotted. The commands that build it, and the Packer version they are
# tested with, open README.md in this directory.

variable "region" {
  type        = string
  default     = "eu-central-1"
  description = "AWS region the build instance runs in and the AMI is registered in."
}

variable "source_ami_owners" {
  type = list(string)
  # Debian's official cloud images account.
  default     = ["136693071363"]
  description = "Accounts whose AMIs may be the source."
}

variable "source_ami_name" {
  type        = string
  default     = "debian-12-amd64-*"
  description = "Name pattern of the source AMI; the most recent match is used."
}

variable "source_ami_architecture" {
  type        = string
  default     = "x86_64"
  description = "AMI architecture: x86_64, or arm64 for Graviton (with an arm64 name and instance type, README.md)."
}

variable "instance_type" {
  type        = string
  default     = "t3.small"
  description = "Build instance type. The role only installs a package on it: a micro instance is enough."
}

variable "ssh_username" {
  type        = string
  default     = "admin"
  description = "Login of the source AMI (Debian: admin; Ubuntu: ubuntu)."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet of the build instance; empty for the default VPC."
}

variable "ami_name_prefix" {
  type    = string
  default = "sendmail-shim-debian-12"
}

variable "ami_regions" {
  type        = list(string)
  default     = []
  description = "Further regions the AMI is copied to."
}

variable "ansible_extra_vars" {
  type        = list(string)
  default     = []
  description = "More --extra-vars for the playbook, e.g. [\"@fleet-image.yml\"] with site-wide role settings."
}

variable "repository" {
  type        = string
  default     = ""
  description = "Checkout of sendmail-shim whose playbooks/site.yml is applied; empty: the one this file is in."
}

locals {
  repository = var.repository != "" ? var.repository : "${path.root}/.."
  # AMI names must be unique per region: a sortable build time makes them so and orders them.
  build_time = formatdate("YYYYMMDD-hhmmss", timestamp())
  ansible_extra_arguments = flatten([
    # site.yml's image-build flavour: nothing started, nothing host-specific, no canary batches.
    ["--extra-vars", "site_image_build=true"],
    [for extra in var.ansible_extra_vars : ["--extra-vars", extra]],
  ])
}

source "amazon-ebs" "debian" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = var.ssh_username
  subnet_id     = var.subnet_id
  ami_name      = "${var.ami_name_prefix}-${local.build_time}"
  ami_regions   = var.ami_regions

  source_ami_filter {
    filters = {
      name                = var.source_ami_name
      architecture        = var.source_ami_architecture
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = var.source_ami_owners
    most_recent = true
  }

  tags = {
    Name        = "${var.ami_name_prefix}-${local.build_time}"
    Component   = "sendmail-shim"
    SourceAMI   = "{{ .SourceAMI }}"
    SourceName  = "{{ .SourceAMIName }}"
    BuildRegion = var.region
  }
}

build {
  sources = ["source.amazon-ebs.debian"]

  provisioner "ansible" {
    playbook_file = "${local.repository}/playbooks/site.yml"
    user          = var.ssh_username
    # Ansible connects to the instance directly with Packer's temporary key; the default SSH proxy of
    # the provisioner breaks with current OpenSSH and adds nothing here.
    use_proxy       = false
    extra_arguments = local.ansible_extra_arguments
    ansible_env_vars = [
      "ANSIBLE_CONFIG=${local.repository}/ansible.cfg",
      # A fresh instance's host key is unknown by construction.
      "ANSIBLE_HOST_KEY_CHECKING=False",
    ]
  }

  # The image carries no identity of the build instance: on first boot cloud-init treats each instance
  # as new (host keys, hostname) and systemd writes a new machine-id.
  provisioner "shell" {
    execute_command = "sudo sh -eu '{{ .Path }}'"
    inline = [
      "cloud-init clean --logs",
      "truncate -s 0 /etc/machine-id",
    ]
  }

  post-processor "manifest" {
    output     = "packer-manifest.json"
    strip_path = true
  }
}
