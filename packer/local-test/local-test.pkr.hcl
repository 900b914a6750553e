# SPDX-License-Identifier: MIT
# The golden-image provisioning of ../aws-golden-image.pkr.hcl, run against a machine that is already
# there: the null builder connects over SSH and the same ansible provisioner applies playbooks/site.yml in
# its image-build flavour. tests/packer/test_packer.py points it at a systemd container on a loopback port
# and then commits the container as an image; it also works against any VM with SSH and python3.
#
# A directory of its own, so that `packer build packer/` for AWS never picks it up.
#
#   packer build -var ssh_port=2222 -var ssh_private_key_file=./key packer/local-test/

variable "ssh_host" {
  type    = string
  default = "127.0.0.1"
}

variable "ssh_port" {
  type = number
}

variable "ssh_username" {
  type    = string
  default = "root"
}

variable "ssh_private_key_file" {
  type = string
}

variable "repository" {
  type        = string
  default     = ""
  description = "Checkout of sendmail-shim whose playbooks/site.yml is applied; empty: the one this file is in."
}

locals {
  repository = var.repository != "" ? var.repository : "${path.root}/../.."
}

source "null" "ssh" {
  communicator         = "ssh"
  ssh_host             = var.ssh_host
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "2m"
}

build {
  sources = ["source.null.ssh"]

  # Same provisioner as the AWS template: only the connection differs.
  provisioner "ansible" {
    playbook_file   = "${local.repository}/playbooks/site.yml"
    user            = var.ssh_username
    use_proxy       = false
    extra_arguments = ["--extra-vars", "site_image_build=true"]
    ansible_env_vars = [
      "ANSIBLE_CONFIG=${local.repository}/ansible.cfg",
      "ANSIBLE_HOST_KEY_CHECKING=False",
    ]
  }
}
