//! What stratusd tells the site's network services about its virtual networks.

pub mod dhcp;
