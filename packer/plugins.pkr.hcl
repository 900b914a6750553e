# SPDX-License-Identifier: MIT
# Plugins for current Packer (1.7 and later), which loads builders and provisioners as plugins:
#   packer init packer/
#
# Kept in a file of its own because Packer 1.6 (Debian 12's package, used by the tests) has the amazon-ebs
# builder and the ansible provisioner built in and rejects a `required_plugins` block: the tests validate
# the templates without this file (tests/packer/test_packer.py).
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.0"
    }
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = ">= 1.1.0"
    }
  }
}
