//! Every client method against the seed data.

use downstream::models::{
    CartItem, DeviceMode, DeviceSettingsPatch, DeviceStatus, InventoryStatus, OrderStatus,
    PlaceOrderRequest, QuoteRequest,
};

use crate::{Harness, ctx};

#[tokio::test]
async fn users() {
    let h = Harness::start().await;
    let users = &h.downstream.users;
    let ada = users.get(&ctx(), "u1").await.unwrap();
    assert_eq!(ada.name, "Ada Lovelace");
    assert_eq!(ada.membership_level, "gold");
    assert_eq!(ada.loyalty_points, 1250);
    assert_eq!(ada.unread_notifications_count, 3);
    assert!(ada.can_checkout);
    assert_eq!(ada.addresses.len(), 2);
    assert_eq!(ada.addresses.iter().filter(|a| a.is_default).count(), 1);
    assert!(ada.avatar.high_res_url.contains("u1"));

    let many = users
        .get_many(&ctx(), &["u2".into(), "nobody".into(), "u1".into()])
        .await
        .unwrap();
    let ids: Vec<_> = many.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["u2", "u1"], "unknown ids are left out, order kept");
    assert!(!users.get(&ctx(), "u5").await.unwrap().can_checkout);

    let analytics = users.analytics(&ctx(), "u1").await.unwrap();
    assert_eq!(analytics.currency, "USD");
    assert!(analytics.total_spent_cents > 0);
    assert!(analytics.orders_this_month >= 1);
    assert!(!analytics.favorite_categories.is_empty());

    let methods = users.payment_methods(&ctx(), "u1").await.unwrap();
    assert_eq!(methods.len(), 2);
    assert_eq!(methods.iter().filter(|m| m.is_default).count(), 1);
}

#[tokio::test]
async fn wishlist_changes() {
    let h = Harness::start().await;
    let users = &h.downstream.users;
    let wishlist = users.wishlist(&ctx(), "u1").await.unwrap();
    assert_eq!(wishlist.product_ids, ["p2", "p5"]);

    users.add_to_wishlist(&ctx(), "u1", "p7").await.unwrap();
    let after_add = users.wishlist(&ctx(), "u1").await.unwrap();
    assert!(after_add.product_ids.contains(&"p7".to_owned()));

    users
        .remove_from_wishlist(&ctx(), "u1", "p2")
        .await
        .unwrap();
    let after_remove = users.wishlist(&ctx(), "u1").await.unwrap();
    assert!(!after_remove.product_ids.contains(&"p2".to_owned()));
}

#[tokio::test]
async fn products() {
    let h = Harness::start().await;
    let products = &h.downstream.products;
    let p1 = products.get(&ctx(), "p1").await.unwrap();
    assert_eq!(p1.id, "p1");
    assert_eq!(p1.category_id, "electronics");
    assert_eq!(p1.currency, "USD");
    assert!((3..=5).contains(&p1.image_gallery.len()));
    assert!((2..=5).contains(&p1.specifications.len()));
    assert!(!p1.shipping_options.is_empty());

    let many = products
        .get_many(&ctx(), &["p3".into(), "p999".into(), "p1".into()])
        .await
        .unwrap();
    let ids: Vec<_> = many.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["p3", "p1"]);

    let page = products.by_category(&ctx(), "home", 2, 8).await.unwrap();
    assert_eq!((page.total, page.page, page.limit), (20, 2, 8));
    let ids: Vec<_> = page.items.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), 8);
    assert!(page.items.iter().all(|p| p.category_id == "home"));

    let statuses: std::collections::HashSet<_> = products
        .get_many(
            &ctx(),
            &(1..=60).map(|i| format!("p{i}")).collect::<Vec<_>>(),
        )
        .await
        .unwrap()
        .iter()
        .map(|p| p.inventory_status)
        .collect();
    assert_eq!(statuses.len(), 3, "every stock status is seeded");
    assert!(statuses.contains(&InventoryStatus::LowStock));

    let reviews = products.reviews(&ctx(), "p1", 3).await.unwrap();
    assert!(reviews.len() <= 3);
    assert!(
        reviews
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at)
    );

    let related = products.related(&ctx(), "p1", 4).await.unwrap();
    assert!(!related.product_ids.is_empty() && related.product_ids.len() <= 4);
    assert!(!related.product_ids.contains(&"p1".to_owned()));
}

#[tokio::test]
async fn orders_quote_and_idempotent_placement() {
    let h = Harness::start().await;
    let orders = &h.downstream.orders;
    let recent = orders.for_user(&ctx(), "u1", 10).await.unwrap();
    assert_eq!(recent.len(), 10);
    assert!(
        recent
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at)
    );
    let all = orders.for_user(&ctx(), "u1", 50).await.unwrap();
    assert!(all.len() >= 12);
    let shipped = all
        .iter()
        .find(|o| o.status == OrderStatus::Shipped)
        .expect("a shipped order is seeded");
    assert!(shipped.tracking_number.is_some());
    let by_id = orders.get(&ctx(), &recent[0].id).await.unwrap();
    assert_eq!(by_id, recent[0]);

    let user = h.downstream.users.get(&ctx(), "u1").await.unwrap();
    let address = user.addresses.iter().find(|a| a.is_default).unwrap();
    let items = vec![CartItem {
        product_id: "p1".into(),
        quantity: 2,
    }];
    let quote = orders
        .quote(
            &ctx(),
            &QuoteRequest {
                user_id: "u1".into(),
                items: items.clone(),
                address_id: Some(address.id.clone()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        quote.total_cents,
        quote.subtotal_cents - quote.discount_cents + quote.shipping_cents + quote.tax_cents
    );
    assert!(!quote.shipping_options.is_empty());

    let methods = h
        .downstream
        .users
        .payment_methods(&ctx(), "u1")
        .await
        .unwrap();
    let request = PlaceOrderRequest {
        user_id: "u1".into(),
        items,
        address_id: address.id.clone(),
        shipping_option_id: quote.shipping_options[0].id.clone(),
        payment_method_id: methods[0].id.clone(),
    };
    let first = orders.place(&ctx(), "key-1", &request).await.unwrap();
    let again = orders.place(&ctx(), "key-1", &request).await.unwrap();
    assert_eq!(first.id, again.id, "same key, same order");
    assert_eq!(first.status, OrderStatus::Placed);
    let requests = h.services.order.control.requests();
    let placed: Vec<_> = requests
        .iter()
        .filter(|r| r.route == "POST /orders")
        .collect();
    assert_eq!(placed.len(), 2);
    assert!(
        placed
            .iter()
            .all(|r| r.idempotency_key.as_deref() == Some("key-1"))
    );
    let newest = orders.for_user(&ctx(), "u1", 1).await.unwrap();
    assert_eq!(newest[0].id, first.id);
}

#[tokio::test]
async fn recommendations() {
    let h = Harness::start().await;
    let recs = &h.downstream.recommendations;
    let for_ada = recs.for_user(&ctx(), "u1", 10).await.unwrap();
    assert_eq!(for_ada.len(), 10);
    assert!(for_ada.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(for_ada.iter().any(|r| r.reason.is_some()));
    let similar = recs.similar(&ctx(), "p1", Some("u1"), 5).await.unwrap();
    assert!(!similar.is_empty() && similar.len() <= 5);
    assert!(similar.iter().all(|s| s.product_id != "p1"));
    let anonymous = recs.similar(&ctx(), "p1", None, 5).await.unwrap();
    assert!(!anonymous.is_empty());
}

#[tokio::test]
async fn devices() {
    let h = Harness::start().await;
    let devices = &h.downstream.devices;
    let d1 = devices.get(&ctx(), "d1").await.unwrap();
    assert_eq!(d1.owner_id, "u1");
    assert_eq!(d1.status, DeviceStatus::Online);
    assert_eq!(d1.temperature, Some(21.7));
    assert_eq!(d1.battery_level, Some(87));
    assert_eq!(d1.last_update.timestamp(), 1_764_028_800);
    let d3 = devices.get(&ctx(), "d3").await.unwrap();
    assert_eq!((d3.temperature, d3.battery_level), (None, None));

    let patch = DeviceSettingsPatch {
        target_temperature: Some(19.5),
        mode: Some(DeviceMode::Eco),
        ..DeviceSettingsPatch::default()
    };
    let updated = devices.update_settings(&ctx(), "d1", &patch).await.unwrap();
    assert_eq!(updated.settings.target_temperature, 19.5);
    assert_eq!(updated.settings.mode, DeviceMode::Eco);
    assert_eq!(updated.settings.schedule, d1.settings.schedule, "untouched");
}

#[tokio::test]
async fn every_call_carries_request_id_trace_and_viewer() {
    let h = Harness::start().await;
    let ctx = ctx();
    h.downstream.products.get(&ctx, "p1").await.unwrap();
    let recorded = h.services.product.control.requests();
    let call = recorded.last().unwrap();
    assert_eq!(call.request_id.as_deref(), Some(ctx.request_id.as_str()));
    assert_eq!(call.user_id.as_deref(), Some("u1"));
    let trace = call.traceparent.as_deref().unwrap();
    assert_eq!(trace, ctx.trace.to_string());
}

#[tokio::test]
async fn ids_cannot_escape_their_path_segment() {
    let h = Harness::start().await;
    let error = h
        .downstream
        .products
        .get(&ctx(), "../users/u1")
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        downstream::DownstreamError::NotFound { .. }
    ));
    let call = h.services.product.control.requests().pop().unwrap();
    assert_eq!(call.route, "GET /products/{id}");
}
